/*
 * sipguard module - KEMI exports and events for KEMI scripts
 *
 * This file is part of sipguard; GPL-2.0-or-later.
 */

#ifndef _SIPGUARD_KEMI_H_
#define _SIPGUARD_KEMI_H_

#include "../../core/str.h"
#include "../../core/parser/msg_parser.h"

/* modparam event_callback: the KEMI function every event is given to */
extern str _sg_event_callback;

/* mod_init: refuse an event_callback without a KEMI config engine */
int sipguard_kemi_init(void);

/* Run an event: the native event_route[evname] when the script has one
 * (rt, from route_lookup(&event_rt, evname), >= 0), else the event_callback
 * function of a KEMI script with evname as its argument. On a faked
 * message; the caller sets what $sipguard(...) reads first. Returns 1 when
 * something ran, 0 when nothing handles the event, -1 on error. */
int sipguard_event_run(int rt, const char *evname);

/* script functions defined in sipguard_mod.c */
int ki_sipguard_check(sip_msg_t *msg);
int ki_sipguard_check_ip(sip_msg_t *msg, str *addr);

#endif
