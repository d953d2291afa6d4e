/* Run a process as if on another x86 CPU: an LD_PRELOAD library that turns on Linux's CPUID faulting
 * (arch_prctl ARCH_SET_CPUID) and answers each CPUID instruction itself: the real answer, except for
 *   OTHERCPU_CACHES_KIB="L1d,L2,L3"  the data/unified cache sizes, in KiB (0 keeps one), and
 *   OTHERCPU_HIDE=amx | avx512       AMX (and AVX512_FP16) hidden, or every AVX-512 extension and AMX too.
 *
 * Eigen and oneDNN read cache sizes with CPUID to choose their block sizes, and instruction sets to
 * choose their kernels; TensorFlow reads them to decide whether its oneDNN ops are on. The process runs
 * natively, at full speed; only what CPUID reports changes. Built and used by benchmarks/othercpu.py.
 */
#define _GNU_SOURCE
#include <asm/prctl.h>
#include <cpuid.h>
#include <dlfcn.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <ucontext.h>
#include <unistd.h>

static unsigned want_kib[4];          /* index = cache level; 0 = keep the real size */
static int hide_avx512, hide_amx;
static struct sigaction user_segv;    /* SIGSEGV handler the program installed after us */
static int (*real_sigaction)(int, const struct sigaction *, struct sigaction *);

static void set_cpuid_faulting(int on) { syscall(SYS_arch_prctl, ARCH_SET_CPUID, on ? 0 : 1); }

/* Leaf 4 (Intel) and 0x8000001D (AMD) describe one cache per subleaf: size = ways*partitions*line*sets. */
static void resize_descriptor(unsigned r[4]) {
    unsigned type = r[0] & 0x1f, level = (r[0] >> 5) & 0x7;
    if ((type != 1 && type != 3) || level > 3 || !want_kib[level]) return;
    unsigned ways = (r[1] >> 22) + 1, parts = ((r[1] >> 12) & 0x3ff) + 1, line = (r[1] & 0xfff) + 1;
    unsigned long bytes = (unsigned long)want_kib[level] * 1024;
    static const unsigned try_ways[] = {0, 16, 8, 12, 20, 4, 2, 1};
    for (unsigned i = 0; i < sizeof try_ways / sizeof *try_ways; i++) {
        unsigned w = i ? try_ways[i] : ways;     /* keep the real associativity if the size allows */
        if (bytes % ((unsigned long)w * parts * line) == 0) { ways = w; break; }
    }
    unsigned long sets = bytes / ((unsigned long)ways * parts * line);
    r[1] = (r[1] & 0x3fffff) | ((ways - 1) << 22);
    r[2] = (unsigned)(sets ? sets : 1) - 1;
}

static void answer(unsigned leaf, unsigned sub, unsigned r[4]) {
    set_cpuid_faulting(0);
    __cpuid_count(leaf, sub, r[0], r[1], r[2], r[3]);
    set_cpuid_faulting(1);
    if (leaf == 4 || leaf == 0x8000001d) resize_descriptor(r);
    if (leaf == 7 && sub == 0 && (hide_avx512 || hide_amx)) {
        r[3] &= ~((1u << 22) | (1u << 23) | (1u << 24) | (1u << 25));          /* AMX, AVX512_FP16 */
        if (hide_avx512) {
            r[1] &= ~((1u << 16) | (1u << 17) | (1u << 21) | (1u << 26) | (1u << 27) | (1u << 28) | (1u << 30) | (1u << 31));
            r[2] &= ~((1u << 1) | (1u << 6) | (1u << 11) | (1u << 12) | (1u << 14));
            r[3] &= ~((1u << 2) | (1u << 3) | (1u << 8));
        }
    }
    if (leaf == 7 && sub == 1 && (hide_avx512 || hide_amx)) {
        r[0] &= ~((1u << 21) | (hide_avx512 ? (1u << 4) | (1u << 5) : 0));   /* AMX_FP16; AVX_VNNI, AVX512_BF16 */
        r[3] &= ~((1u << 8) | (1u << 19));                                     /* AMX_COMPLEX, AVX10 */
        if (hide_avx512) r[3] &= ~((1u << 4) | (1u << 5));
    }
    if (leaf == 0x80000005 && want_kib[1]) r[2] = (r[2] & 0x00ffffff) | ((want_kib[1] & 0xff) << 24);
    if (leaf == 0x80000006) {
        if (want_kib[2]) r[2] = (r[2] & 0xffff) | ((want_kib[2] & 0xffff) << 16);
        if (want_kib[3]) r[3] = (r[3] & 0x3ffff) | ((want_kib[3] / 512) << 18);
    }
}

static void on_segv(int sig, siginfo_t *info, void *ctx) {
    ucontext_t *uc = ctx;
    greg_t *g = uc->uc_mcontext.gregs;
    const unsigned char *ip = (const unsigned char *)g[REG_RIP];
    if (ip[0] == 0x0f && ip[1] == 0xa2) {
        unsigned r[4];
        answer((unsigned)g[REG_RAX], (unsigned)g[REG_RCX], r);
        g[REG_RAX] = r[0]; g[REG_RBX] = r[1]; g[REG_RCX] = r[2]; g[REG_RDX] = r[3];
        g[REG_RIP] += 2;
        return;
    }
    if (user_segv.sa_flags & SA_SIGINFO && user_segv.sa_sigaction) { user_segv.sa_sigaction(sig, info, ctx); return; }
    if (user_segv.sa_handler != SIG_DFL && user_segv.sa_handler != SIG_IGN && user_segv.sa_handler) {
        user_segv.sa_handler(sig); return;
    }
    struct sigaction dfl;       /* a real fault: let it kill the process as it would have */
    memset(&dfl, 0, sizeof dfl);
    dfl.sa_handler = SIG_DFL;
    real_sigaction(SIGSEGV, &dfl, NULL);
}

/* Keep our handler in front of any SIGSEGV handler the program installs (Python's faulthandler...). */
int sigaction(int sig, const struct sigaction *act, struct sigaction *old) {
    if (!real_sigaction) real_sigaction = dlsym(RTLD_NEXT, "sigaction");
    if (sig != SIGSEGV) return real_sigaction(sig, act, old);
    if (old) *old = user_segv;
    if (act) user_segv = *act;
    return 0;
}

__attribute__((constructor)) static void init(void) {
    const char *spec = getenv("OTHERCPU_CACHES_KIB"), *hide = getenv("OTHERCPU_HIDE");
    if (spec) sscanf(spec, "%u,%u,%u", &want_kib[1], &want_kib[2], &want_kib[3]);
    hide_avx512 = hide && !strcmp(hide, "avx512");
    hide_amx = hide_avx512 || (hide && !strcmp(hide, "amx"));
    if (!want_kib[1] && !want_kib[2] && !want_kib[3] && !hide_amx) return;
    real_sigaction = dlsym(RTLD_NEXT, "sigaction");
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = on_segv;
    sa.sa_flags = SA_SIGINFO | SA_NODEFER;
    sigemptyset(&sa.sa_mask);
    real_sigaction(SIGSEGV, &sa, NULL);
    if (syscall(SYS_arch_prctl, ARCH_SET_CPUID, 0) != 0) {
        fprintf(stderr, "othercpu: this CPU or kernel has no CPUID faulting, so it cannot present another CPU\n");
        exit(97);
    }
}
