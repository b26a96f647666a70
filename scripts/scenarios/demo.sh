# The main job: boot the guest once and show what it prints.
rig_start demo /rig/cfg/guest.cfg 'kernel="/rig/guests/guest"' && rig_wait demo 120 shutdown
# And RPCs through the dom0 shadowdaemon (files, random bytes, a tree of RPCs).
rig_rpc_peer rpcdemo &
peer=$!
rig_start rpcdemo /rig/cfg/guest.cfg 'kernel="/rig/guests/guest"' 'extra="ethos.app=rpc-demo"' &&
    rig_wait rpcdemo 200 shutdown
rig_rpc_peer_stop $peer
