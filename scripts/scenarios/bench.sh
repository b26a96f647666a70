# Benchmark scenario (scripts/bench): smallest memory that boots, then boot
# times of our guest and of a Linux PV domU, each from `xl create` to its
# first line of output that proves it is up.
guest_cfg=/rig/cfg/guest.cfg
image='kernel="/rig/guests/guest"'

RIG_CREATE_EXPECT=any
for mib in 1 2 3 4 5 6 7 8; do
    if rig_start "mem$mib" $guest_cfg "$image" "memory=$mib" && rig_wait "mem$mib" 60 any \
            && grep -q "ready: " /var/log/xen/console/guest-mem$mib.log; then
        rig fact "min_memory_mib=$mib"
        break
    fi
done
RIG_CREATE_EXPECT=success

runs=${BENCH_RUNS:-7}
i=1
while [ $i -le $runs ]; do
    us=$(rig_time_to_line "ethos$i" $guest_cfg "ready: " 60 "$image") && rig fact "ethos_boot_us_$i=$us"
    rig_wait "ethos$i" 60 shutdown
    i=$((i + 1))
done

i=1
while [ $i -le $runs ]; do
    us=$(rig_time_to_line "linux$i" /rig/cfg/linux-domu.cfg "first userspace line" 120) \
        && rig fact "linux_boot_us_$i=$us"
    rig_wait "linux$i" 120 shutdown
    i=$((i + 1))
done

# In-guest benchmarks of the event system calls.
rig_start bench $guest_cfg 'kernel="/rig/guests/guest-test"' 'extra="ethos.app=bench"' && rig_wait bench 300 shutdown

# RPC benchmarks against the real shadowdaemon (guest/src/apps/rpc_bench.rs).
rig_daemon_start
rig_start rpcbench $guest_cfg 'kernel="/rig/guests/guest-test"' 'extra="ethos.app=rpc-bench"' && rig_wait rpcbench 600 shutdown
rig_daemon_stop
rig_daemon_report
