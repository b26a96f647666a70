# Boots the guest normally, then once more told to fault on purpose.
rig_start boot /rig/cfg/guest.cfg 'kernel="/rig/guests/guest"' && rig_wait boot 120 shutdown
rig_start fault /rig/cfg/guest.cfg 'kernel="/rig/guests/guest"' 'extra="ethos.test_fault=pagefault"' \
    && rig_wait fault 120 crashed
rig_start panic /rig/cfg/guest.cfg 'kernel="/rig/guests/guest"' 'extra="ethos.test_fault=panic"' \
    && rig_wait panic 120 crashed
