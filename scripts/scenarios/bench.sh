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

# User mode: the null system call, spawn to exit and the cost of a
# process, from a program (programs/src/bin/ubench.rs); and the same from a
# static program in the Linux PV domU (scripts/lib/lbench.c).
rig_start ubench $guest_cfg "$image" 'ramdisk="/rig/guests/programs.cpio"' 'extra="ethos.init=ubench ethos.rpc=off"' &&
    rig_wait ubench 300 shutdown
rig_start lbench /rig/cfg/linux-domu.cfg 'extra="console=hvc0 quiet lbench"' && rig_wait lbench 300 shutdown

# Save and restore (issue 14): how long `xl save` and `xl restore` take for
# our guest and for the Linux PV domU with the same memory=, the saved
# image's size, and the pause the guest sees (dom0's clock from the start
# of the save to the end of the restore: the domain runs in neither).
# SAVE_RUNS (default 3) of each.
save_runs=${SAVE_RUNS:-3}
save_restore_bench() {
    who=$1 name=$2
    i=1
    while [ $i -le $save_runs ]; do
        t0=$(now_us)
        xl save "$name" /tmp/bench.img >/dev/null 2>&1 || { rig fact "${who}_save_failed=$i"; return 1; }
        t1=$(now_us)
        rig fact "${who}_saved_bytes=$(stat -c %s /tmp/bench.img)"
        xl restore /tmp/bench.img >/dev/null 2>&1 || { rig fact "${who}_restore_failed=$i"; return 1; }
        t2=$(now_us)
        rm -f /tmp/bench.img
        rig fact "${who}_save_us_$i=$((t1 - t0))"
        rig fact "${who}_restore_us_$i=$((t2 - t1))"
        i=$((i + 1))
    done
}
if rig_start esave $guest_cfg "$image" 'memory=128' 'ramdisk="/rig/guests/programs.cpio"' \
        'extra="ethos.init=sleep ethos.rpc=off -- 3600000"' &&
        rig_wait_line esave "init: program sleep started" 60; then
    save_restore_bench ethos esave
fi
xl destroy esave 2>/dev/null
rig_wait esave 30 any
if rig_start lsave /rig/cfg/linux-domu.cfg 'memory=128' 'on_poweroff="preserve"' \
        'extra="console=hvc0 quiet stay"' && rig_wait_line lsave "staying up" 120; then
    save_restore_bench linux lsave
fi
xl destroy lsave 2>/dev/null
rig_wait lsave 30 any

# The event system calls, from a program (programs/src/bin/bench.rs).
rig_start bench $guest_cfg "$image" 'ramdisk="/rig/guests/programs.cpio"' 'extra="ethos.init=bench ethos.rpc=off"' &&
    rig_wait bench 300 shutdown
# The same with the event timeline on (ethos.trace=on; no RPC channel, so the
# ring fills and then drops, but every record is still made, clock read and
# all): scripts/bench takes the cost of one record from the null call's round
# trip, which records one system call each.
rig_start benchtrace $guest_cfg "$image" 'ramdisk="/rig/guests/programs.cpio"' 'extra="ethos.init=bench ethos.rpc=off ethos.trace=on"' &&
    rig_wait benchtrace 300 shutdown

# RPC benchmarks against the real shadowdaemon, from a program
# (programs/src/bin/rpc-bench.rs).
rig_daemon_start
rig_start rpcbench $guest_cfg "$image" 'ramdisk="/rig/guests/programs.cpio"' 'extra="ethos.init=rpc-bench"' &&
    rig_wait rpcbench 600 shutdown
rig_daemon_stop
rig_daemon_report

# Network: TCP throughput each way and HTTP requests per second against our
# guest, then the same transfers against a Linux PV domU (Debian's kernel,
# xen-netfront, busybox httpd and nc) on the same bridge with the same
# client (rig-net). 10 MiB per transfer, NET_RUNS (default 3) of each.
net=/rig/bin/rig-net
net_runs=${NET_RUNS:-3}
dd if=/dev/zero of=/tmp/net-up bs=1048576 count=10 2>/dev/null
# Live migration to localhost (issue 14): `xl migrate` of guest NAME at IP
# while dom0 pings it every 50 ms; the total time, and the longest gap
# between two replies (the downtime, to 50 ms).
migrate_bench() {
    who=$1 name=$2 ip=$3
    busybox ping -i 0.05 "$ip" >/tmp/mig-ping 2>&1 &
    pinger=$!
    usleep 1000000
    t0=$(now_us)
    if ! xl migrate -s "" "$name" "xl migrate-receive" >/tmp/mig.log 2>&1; then
        rig fact "${who}_migrate_failed=1"
        sed "s/^/@@RIG log bench|$who migrate: /" /tmp/mig.log
    fi
    t1=$(now_us)
    usleep 1000000
    kill $pinger 2>/dev/null
    rig fact "${who}_migrate_us=$((t1 - t0))"
    rig fact "${who}_migrate_gap_ms=$(awk -F'seq=' 'NF > 1 { split($2, a, " "); s = a[1] + 0;
        if (seen && s - last > gap) gap = s - last; last = s; seen = 1 } END { print gap * 50 }' /tmp/mig-ping)"
}
# Starts the guest-net image as NAME on br0 serving net-demo, with the
# extra command-line words EXTRA; true once it serves.
start_net_demo() {
    rig_start "$1" $guest_cfg 'kernel="/rig/guests/guest-net"' 'ramdisk="/rig/guests/user.cpio"' \
        'vif=["mac=00:16:3e:00:00:02,bridge=br0,script=/rig/bin/vif-rig"]' \
        "extra=\"ethos.init=net-demo ethos.ip=192.0.2.2/24 ethos.gw=192.0.2.1 $2\"" &&
        rig_wait_line "$1" "net-demo: serving" 120
}
if start_net_demo netbench ""; then
    i=1
    while [ $i -le $net_runs ]; do
        # /zero and /sink: bytes moved, nothing checksummed (as Linux's httpd and nc).
        rig fact "ethos_net_to_dom0_$i=$($net get 192.0.2.2:8080 /zero /dev/null 2>&1)"
        rig fact "ethos_net_from_dom0_$i=$($net post 192.0.2.2:8080 /sink /tmp/net-up 2>&1)"
        i=$((i + 1))
    done
    rig fact "ethos_http_rps=$($net rps 500 8 192.0.2.2:80 / 2>&1)"
    $net get 192.0.2.2:80 / /tmp/net-stats >/dev/null 2>&1
    rig fact "ethos_net_stats=$(grep '^net ' /tmp/net-stats)"
    migrate_bench ethos netbench 192.0.2.2
    $net get 192.0.2.2:80 /quit >/dev/null 2>&1
fi
rig_wait netbench 120 shutdown
# The same guest with segmentation offload off: what joining segments
# into GSO packets is worth (guest -> dom0).
if start_net_demo notso ethos.tso=off; then
    i=1
    while [ $i -le $net_runs ]; do
        rig fact "ethos_notso_net_to_dom0_$i=$($net get 192.0.2.2:8080 /zero /dev/null 2>&1)"
        i=$((i + 1))
    done
    $net get 192.0.2.2:80 /quit >/dev/null 2>&1
fi
rig_wait notso 120 shutdown
if rig_start linuxnet /rig/cfg/linux-domu.cfg \
        'vif=["mac=00:16:3e:00:00:03,bridge=br0,script=/rig/bin/vif-rig"]' \
        'extra="console=hvc0 quiet netbench=192.0.2.3/24"' &&
        rig_wait_line linuxnet "net ready" 180; then
    i=1
    while [ $i -le $net_runs ]; do
        rig fact "linux_net_to_dom0_$i=$($net get 192.0.2.3:80 /blob /dev/null 2>&1)"
        rig fact "linux_net_from_dom0_$i=$($net send 192.0.2.3:9000 /tmp/net-up 2>&1)"
        i=$((i + 1))
    done
    migrate_bench linux linuxnet 192.0.2.3
fi
xl destroy linuxnet 2>/dev/null
rig_wait linuxnet 60 any
rm -f /tmp/net-up
