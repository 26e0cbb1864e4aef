/* hvm_start_info access and the `key=value` command-line parser. */
#include "rt.h"

/* Only addresses below 4 GiB are mapped by the runtime's page tables. */
#define MAPPED_LIMIT 0x100000000ull

const struct hvm_start_info *boot_info(void) {
  const struct hvm_start_info *info = (const void *)(u64)rt_start_info_paddr;
  if (!info || info->magic != HVM_START_MAGIC) return NULL;
  return info;
}

const char *boot_cmdline(void) {
  const struct hvm_start_info *info = boot_info();
  if (!info || !info->cmdline_paddr || info->cmdline_paddr >= MAPPED_LIMIT) return "";
  return (const char *)info->cmdline_paddr;
}

const struct hvm_memmap_entry *boot_memmap(u32 *count) {
  const struct hvm_start_info *info = boot_info();
  *count = 0;
  if (!info || info->version < 1 || !info->memmap_paddr || info->memmap_paddr >= MAPPED_LIMIT) {
    return NULL;
  }
  *count = info->memmap_entries;
  return (const struct hvm_memmap_entry *)info->memmap_paddr;
}

const char *memmap_type_name(u32 type) {
  switch (type) {
    case 1: return "usable";
    case 2: return "reserved";
    case 3: return "ACPI data";
    case 4: return "ACPI NVS";
    case 5: return "unusable";
    default: return "unknown";
  }
}

u64 boot_total_ram(void) {
  u32 count;
  const struct hvm_memmap_entry *map = boot_memmap(&count);
  u64 total = 0;
  for (u32 i = 0; i < count; i++) {
    if (map[i].type == 1) total += map[i].size;
  }
  return total;
}

static bool is_space(char c) { return c == ' ' || c == '\t' || c == '\n'; }

/* Finds `key` as a whole word; returns what follows it (at '=' or a word end). */
static const char *find_key(const char *key) {
  size_t key_len = strlen(key);
  const char *p = boot_cmdline();
  while (*p) {
    while (is_space(*p)) p++;
    const char *word = p;
    while (*p && !is_space(*p)) p++;
    if ((size_t)(p - word) >= key_len && strncmp(word, key, key_len) == 0 &&
        (word[key_len] == '=' || word + key_len == p)) {
      return word + key_len;
    }
  }
  return NULL;
}

bool cmdline_has(const char *key) { return find_key(key) != NULL; }

bool cmdline_get(const char *key, char *out, size_t out_size) {
  const char *after = find_key(key);
  if (!after || *after != '=' || out_size == 0) return false;
  after++;
  size_t n = 0;
  while (after[n] && !is_space(after[n]) && n + 1 < out_size) {
    out[n] = after[n];
    n++;
  }
  out[n] = '\0';
  return true;
}

u64 cmdline_get_u64(const char *key, u64 fallback) {
  char value[32];
  if (!cmdline_get(key, value, sizeof value) || !value[0]) return fallback;
  const char *p = value;
  u32 base = 10;
  if (p[0] == '0' && (p[1] == 'x' || p[1] == 'X')) {
    base = 16;
    p += 2;
    if (!*p) return fallback;
  }
  u64 v = 0;
  for (; *p; p++) {
    u32 digit;
    if (*p >= '0' && *p <= '9') digit = (u32)(*p - '0');
    else if (base == 16 && *p >= 'a' && *p <= 'f') digit = (u32)(*p - 'a' + 10);
    else if (base == 16 && *p >= 'A' && *p <= 'F') digit = (u32)(*p - 'A' + 10);
    else return fallback;
    v = v * base + digit;
  }
  return v;
}
