-- test script for sipguard_sdp_check_policy() through KEMI (test_kemi.py):
-- every request is answered 200 with X-Sdp: <code of the check>; an
-- X-Sdp-Policy header gives the policy, else the default policy is used
function ksr_request_route()
	if KSR.is_ACK() then
		KSR.x.exit()
	end
	local policy = KSR.hdr.get("X-Sdp-Policy")
	local rc
	if policy == nil then
		rc = KSR.sipguard.sipguard_sdp_check()
	else
		rc = KSR.sipguard.sipguard_sdp_check_policy(policy)
	end
	KSR.hdr.append_to_reply("X-Sdp: " .. rc .. "\r\n")
	KSR.sl.sl_send_reply(200, "OK")
end

function ksr_sipguard_event(evname)
end
