# The main job: boot the guest once and show what it prints.
rig_start demo /rig/cfg/guest.cfg 'kernel="/rig/guests/guest"' && rig_wait demo 120 shutdown
# And RPCs through the shadowdaemon in dom0 (files, random bytes, a tree of
# RPCs), started as a user would start it.
rig_daemon_start
rig_start rpcdemo /rig/cfg/guest.cfg 'kernel="/rig/guests/guest"' 'extra="ethos.app=rpc-demo"' &&
    rig_wait rpcdemo 200 shutdown
rig_daemon_stop
rig_daemon_report
