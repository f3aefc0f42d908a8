/* A console echo guest: waits for input on COM1 (polling LSR.DR), echoes
 * each byte with a-z upper-cased, and exits with status 0 after echoing a
 * newline (or a carriage return, which a terminal sends for Enter).
 * Unlike serial-in.S it waits as long as it takes, so input may arrive late:
 * typed at a terminal or piped in. */
#include "guest.inc"
    .code16
    .globl _start
_start:
wait:
    mov $COM1_LSR, %dx
    in %dx, %al
    test $1, %al
    jz wait
    mov $COM1, %dx
    in %dx, %al
    cmp $'a', %al
    jb 1f
    cmp $'z', %al
    ja 1f
    sub $0x20, %al
1:  out %al, %dx
    cmp $'\n', %al
    je done
    cmp $'\r', %al
    jne wait
    mov $'\n', %al
    out %al, %dx
done:
    EXIT 0
    cli
    hlt
