/* placeholder until Schemas/generate runs protoc-c */
