// SwiftPM needs one source file per C target; the forwarders are all
// static inline in include/CKVM.h.
#include "CKVM.h"
