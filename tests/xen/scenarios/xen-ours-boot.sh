# Our device model under libxl (device_model_override): create, hvmloader, SeaBIOS, CD boot, payload counter.
if boot_guest ob ours; then
  ok "payload marker on COM1"
  if wait_count ob 3 15; then ok "counter reached $(last_count "$(serial_log ob)")"; else bad "counter stuck at $(last_count "$(serial_log ob)")"; fi
else
  bad "our guest did not reach the payload marker"
fi
diag ob
finish
