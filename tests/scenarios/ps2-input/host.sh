# One boot with a VNC server listening (nobody connects: it must cost the guest nothing).
boot -vnc 127.0.0.1:0
