# sipguard KEMI example, Python (app_python3; run by sipguard-python.cfg)
#
# What sipguard.cfg, sipguard-auth.cfg and sipguard-fraud.cfg do, as a
# KEMI script: every request is rate-checked (floods, scanner
# fingerprints, extension scans); a REGISTER is authenticated (digest over
# the subscriber table "subs") under the password-guessing defences and
# saved; an INVITE is held to the toll-fraud rules (destination class,
# velocity, calls up per account, spend) and relayed to SG_CALLEE with the
# number that was judged; OPTIONS gets a stateless 200, anything else a
# 404 (sipguard rewrites a reply that would tell users apart).
# sipguard.lua is the same in Lua.

import KSR

# A route ends where its method returns (Lua's KSR.x.exit()); a request
# route's value is not used.
STOP = 1


def def_string(name, default):
    """A string define of the native config ("sip:..." keeps no quotes)."""
    v = KSR.kx.get_def(name)
    if not v:
        return default
    return v[1:-1] if len(v) >= 2 and v[0] == '"' and v[-1] == '"' else v


def mod_init():
    return kamailio()


class kamailio:
    def __init__(self):
        self.callee = None
        self.gateway = None

    def child_init(self, rank):
        self.callee = def_string("SG_CALLEE", "sip:127.0.0.1:5080")
        self.gateway = def_string("SG_GATEWAY", "127.0.0.1")
        return 0

    def ksr_request_route(self, msg):
        # 1 pass, 2 allowlisted, 3 untracked (table full): go on;
        # -1 this request crossed the rate (banned now), -2 banned already,
        # -3 scanner fingerprint, -4 enumeration (banned now),
        # -5 on the blocklist (blocklist_file): drop, no answer
        if KSR.sipguard.sipguard_check() < 0:
            return STOP
        if KSR.maxfwd.process_maxfwd(10) < 0:
            KSR.sl.sl_send_reply(483, "Too Many Hops")
            return STOP
        if KSR.siputils.has_totag() > 0:
            return self.route_withindlg()
        if KSR.is_CANCEL():
            return self.relay_in_transaction()
        if KSR.is_ACK():
            KSR.tm.t_check_trans()
            return STOP
        KSR.tm.t_check_trans()
        if KSR.is_INVITE():
            if self.route_tollfraud() == STOP:
                return STOP
            KSR.rr.record_route()
            KSR.setdsturi(self.callee)
            if KSR.tm.t_relay() < 0:
                KSR.sl.sl_reply_error()
            return STOP
        if KSR.is_REGISTER():
            return self.route_register()
        if KSR.is_OPTIONS():
            KSR.sl.sl_send_reply(200, "OK")
            return STOP
        KSR.sl.sl_send_reply(404, "Not Found")
        return STOP

    def relay_in_transaction(self):
        """A CANCEL or an in-dialog ACK: relayed only within its transaction."""
        if KSR.tm.t_check_trans() > 0:
            KSR.tm.t_relay()
        return STOP

    def route_withindlg(self):
        # in-dialog requests only of dialogs this proxy set up
        if KSR.dialog.is_known_dlg() < 0:
            if KSR.is_ACK():
                KSR.tm.t_check_trans()
                return STOP
            KSR.xlog.xnotice("sipguard: IN-DIALOG REFUSED method=$rm account=$fU ruri=$ru:"
                             " no such dialog\n")
            KSR.sl.sl_send_reply(481, "Call/Transaction Does Not Exist")
            return STOP
        if KSR.rr.loose_route() > 0:
            KSR.tm.t_relay()
            return STOP
        if KSR.is_ACK():
            return self.relay_in_transaction()
        KSR.sl.sl_send_reply(404, "Not here")
        return STOP

    def route_register(self):
        """REGISTER: digest auth, as route[AUTH] of sipguard-auth.cfg."""
        realm = KSR.pv.gete("$td")
        if KSR.htable.sht_is_null("subs", KSR.pv.gete("$tU")) > 0:
            # sipguard turns this 404 into the same challenge as for a user
            KSR.sl.sl_send_reply(404, "Not Found")
            return STOP
        if KSR.hdr.is_present("Authorization") < 0:
            KSR.auth.auth_challenge(realm, 1)
            return STOP
        # a throttled user name: only its trusted sources get a password check
        if KSR.sipguard.sipguard_auth_allowed() < 0:
            KSR.auth.auth_challenge(realm, 1)
            return STOP
        pw = KSR.htable.sht_get("subs", KSR.pv.gete("$au"))
        if not isinstance(pw, str):
            # an unknown user name is checked against a password no one has
            pw = KSR.pv.gete("$(ci{s.md5})")
        rc = KSR.auth.pv_auth_check(realm, pw, 0, 0)
        if rc < 0:
            if rc in (-2, -3):
                KSR.sipguard.sipguard_auth_failed()  # a wrong password
            # -4, -6: stale nonce
            KSR.auth.auth_challenge(realm, 17 if rc in (-4, -6) else 1)
            return STOP
        if KSR.pv.gete("$au") != KSR.pv.gete("$tU"):
            KSR.sl.sl_send_reply(403, "Forbidden auth ID")
            return STOP
        KSR.sipguard.sipguard_authenticated()
        KSR.auth.consume_credentials()
        if KSR.registrar.save("location", 0) < 0:
            KSR.sl.sl_reply_error()
        return STOP

    def route_tollfraud(self):
        account = KSR.pv.gete("$fU")
        # this example trusts the caller (no digest auth, like
        # sipguard-fraud.cfg): the account is the From user
        KSR.sipguard.sipguard_authenticated()
        # the R-URI itself: what is judged is what is dialled
        rc = KSR.sipguard.sipguard_dial_check(account, KSR.pv.gete("$ru"))
        if rc < 0:
            KSR.xlog.xnotice("sipguard: DIAL DENIED account=$fU number=$rU rc=%d"
                             " reason=$sipguard(dial_reason)\n" % rc)
            if rc >= -3:
                KSR.sl.sl_send_reply(403, "Forbidden")  # class, suspended, velocity
            elif rc == -4:
                KSR.sl.sl_send_reply(404, "No Route")
            else:
                KSR.sl.sl_send_reply(503, "Service Unavailable")
            return STOP
        # relay exactly the number that was judged
        KSR.pv.sets("$ru", "sip:%s@%s;user=phone"
                    % (KSR.pv.gete("$sipguard(dial_e164)"), self.gateway))
        KSR.dialog.dlg_manage()
        rc = KSR.sipguard.sipguard_call_start(account)
        if rc < 0:
            KSR.xlog.xnotice("sipguard: CALL REFUSED account=$fU rc=%d"
                             " reason=$sipguard(call_reason)\n" % rc)
            if rc == -1:
                KSR.sl.sl_send_reply(486, "Call Limit Reached")
            elif rc == -2:
                KSR.sl.sl_send_reply(403, "Forbidden")
            else:
                # -5, -6, -7: not counted, so not relayed (fail closed)
                KSR.sl.sl_send_reply(503, "Service Unavailable")
            return STOP
        return 0

    # app_python3 calls these for every reply and every request sent out
    # (an onsend route is set by default): nothing to do in them here
    def ksr_reply_route(self, msg):
        return 1

    def ksr_onsend_route(self, msg):
        return 1

    # every sipguard event (modparam event_callback), on a faked message;
    # $sipguard(...) holds its values
    def ksr_sipguard_event(self, msg, evname):
        if evname == "sipguard:account-suspended":
            # page someone from here
            KSR.xlog.xalert("sipguard: PAGE account=$sipguard(account) suspended"
                            " reason=$sipguard(suspend_reason)\n")
        return 1
