/*
 * bcryptprimitives.dll shim for running the Windows build under wine 8.0 (Debian 12), test use only.
 *
 * Rust's standard library (1.78+) gets random bytes from ProcessPrng, which it imports from bcryptprimitives.dll.
 * Wine 8.0 has no bcryptprimitives.dll, so every Rust-built DLL fails to load there ("module not found"). This
 * DLL exports that one function, implemented with RtlGenRandom (advapi32's SystemFunction036), which wine has.
 * Real Windows (10 and later) ships the real DLL; this shim is never distributed.
 *
 * Build (scripts/check_windows.sh does it):
 *   x86_64-w64-mingw32-gcc -shared -O2 -o bcryptprimitives.dll bcryptprimitives.c bcryptprimitives.def -ladvapi32
 */
#include <windows.h>

/* RtlGenRandom: exported by advapi32 as SystemFunction036. */
BOOLEAN WINAPI SystemFunction036(PVOID buffer, ULONG length);

/* Same contract as the real one: fills the buffer with random bytes, always returns TRUE. */
BOOL WINAPI ProcessPrng(PBYTE data, SIZE_T len)
{
    while (len > 0) {
        ULONG chunk = len > 0x40000000u ? 0x40000000u : (ULONG)len;
        if (!SystemFunction036(data, chunk))
            return FALSE;
        data += chunk;
        len -= chunk;
    }
    return TRUE;
}
