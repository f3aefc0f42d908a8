/* Firecracker's boot-time signal: an init that is up writes the byte 123 to
 * the boot timer in the first MMIO window (0xd0000000 on x86).
 *
 * Prints "boot timer\n" on COM1, writes 123 there once (a one-byte store),
 * then exits with debugExit(0). With `--boot-timer` the VMM prints its
 * "Guest-boot-time = ..." line; without it the store goes to unclaimed MMIO. */
#include "guest.inc"

#define BOOT_TIMER      0xd0000000
#define BOOT_COMPLETE   123

    .code32
    .globl _start
_start:
    PUTS32 msg
    movb $BOOT_COMPLETE, BOOT_TIMER
    EXIT 0

DEFINE_PUTS32

msg: .asciz "boot timer\n"
