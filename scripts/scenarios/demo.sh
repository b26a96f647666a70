# The main job: boot the guest once and show what it prints.
rig_start demo /rig/cfg/guest.cfg 'kernel="/rig/guests/guest"' && rig_wait demo 120 shutdown
