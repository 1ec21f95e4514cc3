/* Console output, formatting, checks and shutdown. */
#include "guest.h"

void *memset(void *d, int c, size_t n) { uint8_t *p = d; while (n--) *p++ = (uint8_t)c; return d; }
void *memcpy(void *d, const void *s, size_t n) { uint8_t *p = d; const uint8_t *q = s; while (n--) *p++ = *q++; return d; }
int memcmp(const void *a, const void *b, size_t n)
{
    const uint8_t *p = a, *q = b;
    for (; n; n--, p++, q++) if (*p != *q) return *p - *q;
    return 0;
}
size_t strlen(const char *s) { size_t n = 0; while (s[n]) n++; return n; }
int strcmp(const char *a, const char *b) { while (*a && *a == *b) a++, b++; return (uint8_t)*a - (uint8_t)*b; }

void console_write(const char *s, int n) { HYPERVISOR_console_io(CONSOLEIO_write, n, (char *)s); }

/* 64-bit division by a small base without libgcc: long division in 16-bit steps. */
static unsigned divmod(uint64_t *n, unsigned base)
{
    uint32_t r = 0;
    uint64_t q = 0;
    for (int sh = 48; sh >= 0; sh -= 16) {
        uint32_t cur = (r << 16) | (uint32_t)((*n >> sh) & 0xFFFF);
        q |= (uint64_t)(cur / base) << sh;
        r = cur % base;
    }
    *n = q;
    return r;
}

struct out { char *buf; int size, len; };
static void put(struct out *o, char c) { if (o->len < o->size - 1) o->buf[o->len] = c; o->len++; }

/* Supports %d %i %u %x %X %p %s %c %%, flags '0' '-', width, .precision (strings), and l/ll. */
int vsnprintf(char *buf, int size, const char *fmt, va_list ap)
{
    struct out o = { buf, size, 0 };
    for (; *fmt; fmt++) {
        if (*fmt != '%') { put(&o, *fmt); continue; }
        int zero = 0, left = 0, width = 0, lng = 0;
        for (fmt++; *fmt == '0' || *fmt == '-'; fmt++) { if (*fmt == '0') zero = 1; else left = 1; }
        for (; *fmt >= '0' && *fmt <= '9'; fmt++) width = width * 10 + (*fmt - '0');
        int prec = -1;
        if (*fmt == '.') for (prec = 0, fmt++; *fmt >= '0' && *fmt <= '9'; fmt++) prec = prec * 10 + (*fmt - '0');
        for (; *fmt == 'l'; fmt++) lng++;
        char tmp[24], *s = tmp;
        int n = 0, neg = 0;
        uint64_t v;
        switch (*fmt) {
        case 'd': case 'i':
            if (lng >= 2) { int64_t x = va_arg(ap, int64_t); neg = x < 0; v = neg ? -(uint64_t)x : (uint64_t)x; }
            else { int32_t x = va_arg(ap, int32_t); neg = x < 0; v = neg ? -(uint64_t)(int64_t)x : (uint64_t)x; }
            goto number10;
        case 'u':
            v = lng >= 2 ? va_arg(ap, uint64_t) : va_arg(ap, uint32_t);
        number10:
            do tmp[n++] = '0' + divmod(&v, 10); while (v);
            goto emit;
        case 'p':
            put(&o, '0'); put(&o, 'x'); zero = 1; width = 8;
            v = (uint32_t)va_arg(ap, void *);
            goto number16;
        case 'x': case 'X':
            v = lng >= 2 ? va_arg(ap, uint64_t) : va_arg(ap, uint32_t);
        number16:
            do { unsigned d = v & 15; tmp[n++] = d < 10 ? '0' + d : (*fmt == 'X' ? 'A' : 'a') + d - 10; v >>= 4; } while (v);
        emit:
            if (neg && zero) put(&o, '-');
            for (int pad = width - n - neg; !left && pad > 0; pad--) put(&o, zero ? '0' : ' ');
            if (neg && !zero) put(&o, '-');
            for (int i = n; i > 0; i--) put(&o, tmp[i - 1]);
            for (int pad = width - n - neg; left && pad > 0; pad--) put(&o, ' ');
            break;
        case 's':
            s = va_arg(ap, char *);
            if (!s) s = "(null)";
            while (s[n] && (prec < 0 || n < prec)) n++;
            for (int pad = width - n; !left && pad > 0; pad--) put(&o, ' ');
            for (int i = 0; i < n; i++) put(&o, s[i]);
            for (int pad = width - n; left && pad > 0; pad--) put(&o, ' ');
            break;
        case 'c': put(&o, (char)va_arg(ap, int)); break;
        case '%': put(&o, '%'); break;
        default: put(&o, '%'); put(&o, *fmt); if (!*fmt) fmt--; break;
        }
    }
    if (size > 0) o.buf[o.len < size ? o.len : size - 1] = 0;
    return o.len;
}

int snprintf(char *buf, int size, const char *fmt, ...)
{
    va_list ap; va_start(ap, fmt);
    int n = vsnprintf(buf, size, fmt, ap);
    va_end(ap);
    return n;
}

void printf(const char *fmt, ...)
{
    char buf[512];
    va_list ap; va_start(ap, fmt);
    int n = vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    console_write(buf, n < (int)sizeof buf ? n : (int)sizeof buf - 1);
}

static void __attribute__((noreturn)) shutdown(unsigned reason)
{
    struct sched_shutdown s = { reason };
    for (;;) HYPERVISOR_sched_op(SCHEDOP_shutdown, &s);
}
void poweroff(void) { shutdown(SHUTDOWN_poweroff); }
void crash(void) { shutdown(SHUTDOWN_crash); }

void check(int ok, const char *name, const char *fmt, ...)
{
    if (ok) { printf("PASS %s: %s\n", guest_name, name); return; }
    char det[256];
    va_list ap; va_start(ap, fmt);
    vsnprintf(det, sizeof det, fmt, ap);
    va_end(ap);
    printf("FAIL %s: %s (%s)\n", guest_name, name, det);
    crash();
}

void all_pass(void)
{
    printf("ALL PASS %s\n", guest_name);
    poweroff();
}

uint32_t *p2m;
pte_t *cur_root;

void lib_main(void);
void lib_main(void)
{
    p2m = (uint32_t *)start_info->mfn_list;
    cur_root = (pte_t *)start_info->pt_base;
    guest_main();
    all_pass();
}
