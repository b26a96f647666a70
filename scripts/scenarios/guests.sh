# The guests the rig tests read (tests/guest.rs), in one boot of Xen:
# a normal boot, a page fault and a panic on purpose, and the in-guest
# test suite.
image='kernel="/rig/guests/guest"'
cfg=/rig/cfg/guest.cfg
rig_start boot $cfg "$image" 'extra="ethos.app=none"' && rig_wait boot 120 shutdown
rig_start fault $cfg "$image" 'extra="ethos.test_fault=pagefault"' && rig_wait fault 120 crashed
rig_start panic $cfg "$image" 'extra="ethos.test_fault=panic"' && rig_wait panic 120 crashed
rig_start selftest $cfg "$image" 'extra="ethos.app=selftest"' && rig_wait selftest 300 shutdown
