/// Batches of 2-D transposes (NCHW ⇄ NHWC, attention's head splits) with the selected kernel set
/// (`KernelTable.transpose`; plain twin `ReferenceKernels.transpose`).
public enum TransposeKernels {
    public static func transpose(_ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>, batch: Int, rows: Int, columns: Int,
                                 pool: ThreadPool, kernels: KernelSet = .active) {
        kernels.table.transpose(x, y, batch, rows, columns, pool)
    }
}
