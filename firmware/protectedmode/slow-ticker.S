/* The ticker (ticker.S) slowed down for tests that act from another
 * process between ticks (the API tests pause, snapshot and load it over
 * HTTP): PIT channel 0 at its slowest, 65536 counts (a divisor of 0, about
 * 55 ms), and 24 ticks, so a run lasts about 1.3 s. Same output format,
 * same sum; after 24 ticks it exits with debugExit(0x30). */
#define TICKS            24
#define PIT_DIVISOR_HIGH 0x00
#include "ticker.S"
