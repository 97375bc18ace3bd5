/*
 * Status codes and the one error handler of the library.  Library code
 * records a message with ns_error() and returns the status; only the CLI
 * decides to print and exit.
 */
#include "normscope/core.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

static _Thread_local char errbuf[1024];
static ns_error_handler *handler;

int ns_error(int status, const char *fmt, ...)
{
    /* Format into a scratch buffer first: callers may pass ns_errmsg() as
     * an argument to build on the previous message. */
    char tmp[sizeof errbuf];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(tmp, sizeof tmp, fmt, ap);
    va_end(ap);
    memcpy(errbuf, tmp, sizeof errbuf);
    if (handler)
        handler(status, errbuf);
    return status;
}

const char *ns_errmsg(void)
{
    return errbuf;
}

void ns_error_clear(void)
{
    errbuf[0] = '\0';
}

ns_error_handler *ns_set_error_handler(ns_error_handler *h)
{
    ns_error_handler *old = handler;
    handler = h;
    return old;
}

const char *ns_strstatus(int status)
{
    switch (status) {
    case NS_OK: return "success";
    case NS_EINVAL: return "bad input";
    case NS_EIO: return "input/output error";
    case NS_EFORMAT: return "bad file format";
    case NS_ENOMEM: return "out of memory";
    case NS_ENUMERIC: return "numerical failure";
    case NS_EFAIL: return "failure";
    case NS_EWRITE: return "write failure";
    default: return "unknown status";
    }
}

int ns_status_is_input(int status)
{
    return status == NS_EINVAL || status == NS_EIO || status == NS_EFORMAT;
}
