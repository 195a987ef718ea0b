-- sipguard KEMI example, Lua (app_lua; run by sipguard-lua.cfg)
--
-- What sipguard.cfg, sipguard-auth.cfg and sipguard-fraud.cfg do, as a
-- KEMI script: every request is rate-checked (floods, scanner
-- fingerprints, extension scans); a REGISTER is authenticated (digest over
-- the subscriber table "subs") under the password-guessing defences and
-- saved; an INVITE is held to the toll-fraud rules (destination class,
-- velocity, calls up per account, spend) and relayed to SG_CALLEE with the
-- number that was judged; OPTIONS gets a stateless 200, anything else a
-- 404 (sipguard rewrites a reply that would tell users apart).
-- sipguard.py is the same in Python.

-- a string define of the native config ("sip:..." keeps no quotes)
local function def_string(name, default)
	local v = KSR.kx.get_def(name)
	if type(v) ~= "string" or v == "" then
		return default
	end
	return (string.gsub(v, '^"(.*)"$', "%1"))
end

-- read on first use: KEMI functions run only while a message is handled
local CALLEE, GATEWAY
local function settings()
	if CALLEE == nil then
		CALLEE = def_string("SG_CALLEE", "sip:127.0.0.1:5080")
		GATEWAY = def_string("SG_GATEWAY", "127.0.0.1")
	end
end

-- a CANCEL or an in-dialog ACK: relayed only within its transaction
local function relay_in_transaction()
	if KSR.tm.t_check_trans() > 0 then
		KSR.tm.t_relay()
	end
	KSR.x.exit()
end

local function route_withindlg()
	-- in-dialog requests only of dialogs this proxy set up
	if KSR.dialog.is_known_dlg() < 0 then
		if KSR.is_ACK() then
			KSR.tm.t_check_trans()
			KSR.x.exit()
		end
		KSR.xlog.xnotice("sipguard: IN-DIALOG REFUSED method=$rm account=$fU ruri=$ru: no such dialog\n")
		KSR.sl.sl_send_reply(481, "Call/Transaction Does Not Exist")
		KSR.x.exit()
	end
	if KSR.rr.loose_route() > 0 then
		KSR.tm.t_relay()
		KSR.x.exit()
	end
	if KSR.is_ACK() then
		relay_in_transaction()
	end
	KSR.sl.sl_send_reply(404, "Not here")
	KSR.x.exit()
end

-- REGISTER: digest auth, as route[AUTH] of sipguard-auth.cfg
local function route_register()
	local realm = KSR.pv.gete("$td")
	if KSR.htable.sht_is_null("subs", KSR.pv.gete("$tU")) > 0 then
		-- sipguard turns this 404 into the same challenge as for a user
		KSR.sl.sl_send_reply(404, "Not Found")
		KSR.x.exit()
	end
	if KSR.hdr.is_present("Authorization") < 0 then
		KSR.auth.auth_challenge(realm, 1)
		KSR.x.exit()
	end
	-- a throttled user name: only its trusted sources get a password check
	if KSR.sipguard.sipguard_auth_allowed() < 0 then
		KSR.auth.auth_challenge(realm, 1)
		KSR.x.exit()
	end
	local pw = KSR.htable.sht_get("subs", KSR.pv.gete("$au"))
	if type(pw) ~= "string" then
		-- an unknown user name is checked against a password no one has
		pw = KSR.pv.gete("$(ci{s.md5})")
	end
	local rc = KSR.auth.pv_auth_check(realm, pw, 0, 0)
	if rc < 0 then
		if rc == -2 or rc == -3 then
			KSR.sipguard.sipguard_auth_failed() -- a wrong password
		end
		if rc == -4 or rc == -6 then
			KSR.auth.auth_challenge(realm, 17) -- stale nonce
		else
			KSR.auth.auth_challenge(realm, 1)
		end
		KSR.x.exit()
	end
	if KSR.pv.gete("$au") ~= KSR.pv.gete("$tU") then
		KSR.sl.sl_send_reply(403, "Forbidden auth ID")
		KSR.x.exit()
	end
	KSR.sipguard.sipguard_authenticated()
	KSR.auth.consume_credentials()
	if KSR.registrar.save("location", 0) < 0 then
		KSR.sl.sl_reply_error()
	end
	KSR.x.exit()
end

local function route_tollfraud()
	local account = KSR.pv.gete("$fU")
	-- this example trusts the caller (no digest auth, like
	-- sipguard-fraud.cfg): the account is the From user
	KSR.sipguard.sipguard_authenticated()
	-- the R-URI itself: what is judged is what is dialled
	local rc = KSR.sipguard.sipguard_dial_check(account, KSR.pv.gete("$ru"))
	if rc < 0 then
		KSR.xlog.xnotice("sipguard: DIAL DENIED account=$fU number=$rU rc=" .. rc
			.. " reason=$sipguard(dial_reason)\n")
		if rc >= -3 then
			KSR.sl.sl_send_reply(403, "Forbidden") -- class, suspended, velocity
		elseif rc == -4 then
			KSR.sl.sl_send_reply(404, "No Route")
		else
			KSR.sl.sl_send_reply(503, "Service Unavailable")
		end
		KSR.x.exit()
	end
	-- relay exactly the number that was judged
	KSR.pv.sets("$ru", "sip:" .. KSR.pv.gete("$sipguard(dial_e164)") .. "@" .. GATEWAY .. ";user=phone")
	KSR.dialog.dlg_manage()
	rc = KSR.sipguard.sipguard_call_start(account)
	if rc < 0 then
		KSR.xlog.xnotice("sipguard: CALL REFUSED account=$fU rc=" .. rc .. " reason=$sipguard(call_reason)\n")
		if rc == -1 then
			KSR.sl.sl_send_reply(486, "Call Limit Reached")
		elseif rc == -2 then
			KSR.sl.sl_send_reply(403, "Forbidden")
		else
			-- -5, -6, -7: not counted, so not relayed (fail closed)
			KSR.sl.sl_send_reply(503, "Service Unavailable")
		end
		KSR.x.exit()
	end
end

function ksr_request_route()
	-- 1 pass, 2 allowlisted, 3 untracked (table full): go on;
	-- -1 this request crossed the rate (banned now), -2 banned already,
	-- -3 scanner fingerprint, -4 enumeration (banned now),
	-- -5 on the blocklist (blocklist_file): drop, no answer
	if KSR.sipguard.sipguard_check() < 0 then
		KSR.x.exit()
	end
	if KSR.maxfwd.process_maxfwd(10) < 0 then
		KSR.sl.sl_send_reply(483, "Too Many Hops")
		KSR.x.exit()
	end
	if KSR.siputils.has_totag() > 0 then
		route_withindlg()
	end
	if KSR.is_CANCEL() then
		relay_in_transaction()
	end
	if KSR.is_ACK() then
		KSR.tm.t_check_trans()
		KSR.x.exit()
	end
	KSR.tm.t_check_trans()
	if KSR.is_INVITE() then
		settings()
		route_tollfraud()
		KSR.rr.record_route()
		KSR.setdsturi(CALLEE)
		if KSR.tm.t_relay() < 0 then
			KSR.sl.sl_reply_error()
		end
		KSR.x.exit()
	end
	if KSR.is_REGISTER() then
		route_register()
	end
	if KSR.is_OPTIONS() then
		KSR.sl.sl_send_reply(200, "OK")
		KSR.x.exit()
	end
	KSR.sl.sl_send_reply(404, "Not Found")
end

-- every sipguard event (modparam event_callback), on a faked message;
-- $sipguard(...) holds its values
function ksr_sipguard_event(evname)
	if evname == "sipguard:account-suspended" then
		-- page someone from here
		KSR.xlog.xalert("sipguard: PAGE account=$sipguard(account) suspended"
			.. " reason=$sipguard(suspend_reason)\n")
	end
end
