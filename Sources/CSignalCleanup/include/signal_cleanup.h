// Removal of temporary files when the process is interrupted (SIGINT, SIGTERM, SIGHUP, SIGQUIT).
// ZooCore's OutputFile registers each temporary file it creates and unregisters it once renamed or
// removed; a handler unlinks whatever is registered (then removes registered folders, which must be
// empty by then), and lets the signal end the process as usual.
#ifndef ZOO_SIGNAL_CLEANUP_H
#define ZOO_SIGNAL_CLEANUP_H

/// Registers `path` (copied) for removal on a terminating signal, installing the handlers on first
/// use. Returns a slot for `zoo_cleanup_remove`, or -1 when all slots are taken (the file is then
/// not removed on a signal, but everything else works).
int zoo_cleanup_add(const char *path);

/// Forgets the path in `slot` (a value `zoo_cleanup_add` returned; -1 is ignored).
void zoo_cleanup_remove(int slot);

#endif
