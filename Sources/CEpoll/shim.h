#ifndef CLAUDE_PROXY_CEPOLL_SHIM_H
#define CLAUDE_PROXY_CEPOLL_SHIM_H
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <pthread.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>

// accept4 is a GNU extension too.
static inline int cp_accept_nonblocking(int fd) {
    return accept4(fd, 0, 0, SOCK_NONBLOCK | SOCK_CLOEXEC);
}

// pthread_setname_np is a GNU extension: Swift's Glibc module does not declare it. Names are cut to 15 bytes.
static inline int cp_set_thread_name(const char *name) {
    return pthread_setname_np(pthread_self(), name);
}
#endif
