// SPDX-License-Identifier: MIT
//
// bench-hello: the benchmark's minimal handler. Writes "hello\n" to stdout
// (the connection) and exits. Linked statically so that exec costs as
// little as possible (no dynamic loader, no shared libraries to map): what
// remains is the server's own cost of running a process per connection.
//
// It does not read its input; the load generator sends none for this
// handler, so closing the socket with unread data (which makes the kernel
// answer with RST) cannot happen.

#include <unistd.h>

int main(void) {
  static const char msg[] = "hello\n";
  ssize_t n = write(STDOUT_FILENO, msg, sizeof msg - 1);
  return n == (ssize_t)(sizeof msg - 1) ? 0 : 1;
}
