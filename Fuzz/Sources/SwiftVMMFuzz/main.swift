import CLibFuzzer

#if canImport(Glibc)
    import Glibc
#endif

// The program's own main hands over to libFuzzer's driver (libFuzzer's own
// main is then not linked): SwiftPM gives every executable a main of its
// own, so this is the way that works in debug and release builds alike.
// An unknown SWIFTVMM_FUZZ_TARGET fails here, before the first input.
_ = selectedTarget
var argc = CommandLine.argc
var argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>? = CommandLine.unsafeArgv
exit(LLVMFuzzerRunDriver(&argc, &argv) { data, size in testOneInput(data, size) })
