/*
 * sipguard module - the pseudo-variable $sipguard(name)
 */

#ifndef _SIPGUARD_PV_H_
#define _SIPGUARD_PV_H_

#include "../../core/parser/msg_parser.h"
#include "../../core/pvar.h"

int pv_parse_sipguard_name(pv_spec_t *sp, str *in);
int pv_get_sipguard(sip_msg_t *msg, pv_param_t *param, pv_value_t *res);

#endif
