/* A bare-metal C program that calls a medwasm detector through its C header.
 *
 * It is what `cargo medwasm build --target mcu` copies next to `lib<name>.a` as
 * `example/`, and what the integration test builds with arm-none-eabi-gcc and runs
 * in QEMU. The detector API is in the header; everything else here (semihosting
 * output, the start-up code in startup.c) stands in for your own firmware.
 *
 * It fills every input with 0.5 (64 for an int8 input), runs the detector once, and
 * prints the finding and output 0's first element: IEEE-754 bits of a float, the
 * value of an int8 (no printf: no libc needed). */

#include <stdint.h>
#include <string.h>

#include "detector.h"

/* Arm semihosting: `bkpt 0xab` with the operation in r0 and its argument in r1. */
static int semihost(int op, const void *arg) {
    register int r0 __asm__("r0") = op;
    register const void *r1 __asm__("r1") = arg;
    __asm__ volatile("bkpt 0xab" : "+r"(r0) : "r"(r1) : "memory");
    return r0;
}

/* The host's stdout: SYS_OPEN of the special name ":tt" in write mode (4). */
static int host_stdout(void) {
    static int handle = -1;
    if (handle < 0) {
        const uint32_t args[3] = {(uint32_t)(uintptr_t)":tt", 4, 3};
        handle = semihost(0x01 /* SYS_OPEN */, args);
    }
    return handle;
}

static void print(const char *text) {
    const uint32_t args[3] = {(uint32_t)host_stdout(), (uint32_t)(uintptr_t)text,
                              (uint32_t)strlen(text)};
    semihost(0x05 /* SYS_WRITE */, args);
}

static void print_hex(uint32_t value) {
    char buf[9];
    for (int k = 0; k < 8; k++) {
        buf[k] = "0123456789abcdef"[(value >> (28 - 4 * k)) & 0xf];
    }
    buf[8] = 0;
    print(buf);
}

static void print_int(int32_t value) {
    char buf[12];
    int n = 11;
    uint32_t v = value < 0 ? (uint32_t)(-(int64_t)value) : (uint32_t)value;
    buf[n] = 0;
    do {
        buf[--n] = (char)('0' + v % 10);
        v /= 10;
    } while (v != 0);
    if (value < 0) {
        buf[--n] = '-';
    }
    print(&buf[n]);
}

static void exit_qemu(int ok) {
    /* SYS_EXIT with ADP_Stopped_ApplicationExit (0x20026) or RunTimeErrorUnknown. */
    semihost(0x18, (const void *)(uintptr_t)(ok ? 0x20026 : 0x20023));
}

static uint32_t bits(float f) {
    uint32_t u;
    memcpy(&u, &f, sizeof u);
    return u;
}

static int fail(const char *what, int code) {
    int32_t len = medwasm_error_len();
    char message[257];
    if (len > 256) {
        len = 256;
    }
    memcpy(message, medwasm_error_ptr(), (size_t)(len > 0 ? len : 0));
    message[len > 0 ? len : 0] = 0;
    print(what);
    print(" failed: error ");
    print_int(code);
    print(" ");
    print(message);
    print("\n");
    exit_qemu(0);
    return 1;
}

int main(void) {
    int code = medwasm_init();
    if (code != MEDWASM_OK) {
        return fail("medwasm_init", code);
    }
    for (int32_t i = 0; i < medwasm_input_count(); i++) {
        if (medwasm_input_dtype(i) == MEDWASM_DTYPE_I8) {
            int8_t *input = medwasm_input_ptr(i);
            for (int32_t k = 0; k < medwasm_input_len(i); k++) {
                input[k] = 64;
            }
        } else {
            float *input = medwasm_input_ptr(i);
            for (int32_t k = 0; k < medwasm_input_len(i); k++) {
                input[k] = 0.5f;
            }
        }
    }
    code = medwasm_run();
    if (code != MEDWASM_OK) {
        return fail("medwasm_run", code);
    }
    print("finding score ");
    print_hex(bits(medwasm_finding_score()));
    print(" label ");
    print_int(medwasm_finding_label());
    print(" alert ");
    print_int(medwasm_finding_alert());
    print("\noutput0[0] ");
    if (medwasm_output_dtype(0) == MEDWASM_DTYPE_I8) {
        print("int8 ");
        print_int(((const int8_t *)medwasm_output_ptr(0))[0]);
    } else {
        print_hex(bits(((const float *)medwasm_output_ptr(0))[0]));
    }
    print("\n");
    exit_qemu(1);
    return 0;
}
