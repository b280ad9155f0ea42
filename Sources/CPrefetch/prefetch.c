// The module is its header (zoo_prefetch.h, a static inline function); SwiftPM needs a source file.
#include "zoo_prefetch.h"
