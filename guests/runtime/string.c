/* The few libc string functions gcc may emit calls to even when freestanding. */
#include "rt.h"

void *memset(void *dst, int c, size_t n) {
  u8 *d = dst;
  while (n--) *d++ = (u8)c;
  return dst;
}

void *memcpy(void *dst, const void *src, size_t n) {
  u8 *d = dst;
  const u8 *s = src;
  while (n--) *d++ = *s++;
  return dst;
}

void *memmove(void *dst, const void *src, size_t n) {
  u8 *d = dst;
  const u8 *s = src;
  if (d < s) return memcpy(dst, src, n);
  while (n--) d[n] = s[n];
  return dst;
}

int memcmp(const void *a, const void *b, size_t n) {
  const u8 *x = a, *y = b;
  for (size_t i = 0; i < n; i++) {
    if (x[i] != y[i]) return x[i] < y[i] ? -1 : 1;
  }
  return 0;
}

size_t strlen(const char *s) {
  size_t n = 0;
  while (s[n]) n++;
  return n;
}

int strncmp(const char *a, const char *b, size_t n) {
  for (size_t i = 0; i < n; i++) {
    if (a[i] != b[i]) return (u8)a[i] < (u8)b[i] ? -1 : 1;
    if (!a[i]) return 0;
  }
  return 0;
}

bool str_equal(const char *a, const char *b) {
  while (*a && *a == *b) a++, b++;
  return *a == *b;
}
