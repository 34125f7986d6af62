// C++: names must come back demangled (namespace, template, method, parameter types), with the
// allocation site inlined into its caller. Leaks 12 arrays of 40 Entry (16 bytes each) through
// operator new[] from cache::Store<cache::Entry>::fill(int), where make(int) is inlined.
#include <cstddef>

namespace cache {
struct Entry {
  long key;
  long value;
};

template <typename T> struct Store {
  T *kept[16];
  static inline __attribute__((always_inline)) T *make(int n) {
    T *p = new T[n];
    *static_cast<volatile long *>(&p[0].key) = 1;
    return p;
  }
  __attribute__((noinline)) void fill(int n) {
    for (int i = 0; i < 12; i++) kept[i] = make(n);
    __asm__ volatile("" : : "r"(kept) : "memory");
  }
};
}  // namespace cache

static cache::Store<cache::Entry> store;

int main() {
  store.fill(40);
  delete[] new cache::Entry[3];  // balanced: not a leak
  return store.kept[11] ? 0 : 1;
}
