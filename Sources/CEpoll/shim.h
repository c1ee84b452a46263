#ifndef CLAUDE_PROXY_CEPOLL_SHIM_H
#define CLAUDE_PROXY_CEPOLL_SHIM_H
#include <pthread.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>

// Two GNU extensions that Swift's Glibc module does not declare. Declared here rather than through _GNU_SOURCE, which
// changes glibc's own types (fd_set) so that they no longer match the Glibc and Dispatch modules: a clean build fails.
extern int pthread_setname_np(pthread_t thread, const char *name);
extern int accept4(int fd, struct sockaddr *address, socklen_t *length, int flags);

static inline int cp_accept_nonblocking(int fd) {
    return accept4(fd, 0, 0, SOCK_NONBLOCK | SOCK_CLOEXEC);
}

// Names are cut to 15 bytes by the kernel.
static inline int cp_set_thread_name(const char *name) {
    return pthread_setname_np(pthread_self(), name);
}
#endif
