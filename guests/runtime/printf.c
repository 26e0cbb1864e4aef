/* A small printf: enough for hex dumps, counters and strings, nothing from libc. */
#include "rt.h"

void print_lock_acquire(void);
void print_lock_release(void);

struct out {
  int count;
};

static void put(struct out *o, char c) {
  if (c == '\n') serial_putc('\r');
  serial_putc(c);
  o->count++;
}

static void put_padded(struct out *o, const char *s, int len, int width, bool left, char pad) {
  int fill = width > len ? width - len : 0;
  if (!left) {
    /* Zero padding goes after a sign, as in "-0042". */
    if (pad == '0' && len > 0 && s[0] == '-') {
      put(o, '-');
      s++;
      len--;
    }
    while (fill--) put(o, pad);
  }
  for (int i = 0; i < len; i++) put(o, s[i]);
  if (left) {
    while (fill--) put(o, ' ');
  }
}

static int format_unsigned(char *buf, u64 v, u32 base, bool upper) {
  const char *digits = upper ? "0123456789ABCDEF" : "0123456789abcdef";
  char tmp[24];
  int n = 0;
  do {
    tmp[n++] = digits[v % base];
    v /= base;
  } while (v);
  for (int i = 0; i < n; i++) buf[i] = tmp[n - 1 - i];
  return n;
}

int vprintf(const char *fmt, va_list ap) {
  struct out o = {0};
  print_lock_acquire();
  for (; *fmt; fmt++) {
    if (*fmt != '%') {
      put(&o, *fmt);
      continue;
    }
    fmt++;
    bool left = false;
    char pad = ' ';
    for (;; fmt++) {
      if (*fmt == '-') left = true;
      else if (*fmt == '0') pad = '0';
      else break;
    }
    int width = 0;
    while (*fmt >= '0' && *fmt <= '9') width = width * 10 + (*fmt++ - '0');
    int longs = 0;
    while (*fmt == 'l' || *fmt == 'z') {
      longs += *fmt == 'z' ? 2 : 1;
      fmt++;
    }
    char buf[24];
    int len = 0;
    switch (*fmt) {
      case 'd':
      case 'i': {
        long long v = longs ? va_arg(ap, long long) : va_arg(ap, int);
        u64 magnitude = v < 0 ? (u64)0 - (u64)v : (u64)v;
        if (v < 0) buf[len++] = '-';
        len += format_unsigned(buf + len, magnitude, 10, false);
        put_padded(&o, buf, len, width, left, pad);
        break;
      }
      case 'u':
      case 'x':
      case 'X': {
        u64 v = longs ? va_arg(ap, unsigned long long) : va_arg(ap, unsigned int);
        len = format_unsigned(buf, v, *fmt == 'u' ? 10 : 16, *fmt == 'X');
        put_padded(&o, buf, len, width, left, pad);
        break;
      }
      case 'p': {
        buf[0] = '0';
        buf[1] = 'x';
        len = 2 + format_unsigned(buf + 2, (u64)va_arg(ap, void *), 16, false);
        put_padded(&o, buf, len, width, left, pad);
        break;
      }
      case 's': {
        const char *s = va_arg(ap, const char *);
        if (!s) s = "(null)";
        put_padded(&o, s, (int)strlen(s), width, left, ' ');
        break;
      }
      case 'c':
        buf[0] = (char)va_arg(ap, int);
        put_padded(&o, buf, 1, width, left, ' ');
        break;
      case '%':
        put(&o, '%');
        break;
      case '\0':
        fmt--;
        break;
      default:
        put(&o, '%');
        put(&o, *fmt);
        break;
    }
  }
  print_lock_release();
  return o.count;
}

int printf(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  int n = vprintf(fmt, ap);
  va_end(ap);
  return n;
}
