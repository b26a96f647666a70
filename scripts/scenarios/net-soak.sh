# A soak of the network (not part of scripts/test; run it after changing
# netdev, netstack or netfront):
#   scripts/build-guest --net && scripts/build-guest --programs &&
#   scripts/rig --scenario scripts/scenarios/net-soak.sh --out /tmp/soak \
#       --guest target/net/guest-net --guest target/programs/user.cpio --deadline 1200
# ROUNDS (default 8) rounds of: 10 MiB guest -> dom0 and dom0 -> guest, each
# checked with POSIX cksum, 100 clients at once, then both transfers at once;
# every third round the backend is detached and attached again. Each round
# logs the guest's heap, which must stay flat. Read the "soak|" lines of
# serial.log.
net=/rig/bin/rig-net
ip=192.0.2.2
dd if=/dev/urandom of=/tmp/up bs=1024 count=10240 2>/dev/null
want_up=$($net cksum /tmp/up)
if rig_start net /rig/cfg/guest.cfg 'kernel="/rig/guests/guest-net"' 'ramdisk="/rig/guests/user.cpio"' 'vif=["mac=00:16:3e:00:00:02,bridge=br0,script=/rig/bin/vif-rig"]' \
        'extra="ethos.init=net-demo ethos.ip=192.0.2.2/24 ethos.gw=192.0.2.1"'; then
    rig_wait_line net "net-demo: serving" 120
    for i in $(seq 1 ${ROUNDS:-8}); do
        g=$($net get $ip:8080 /blob /tmp/blob 2>&1); gs=$($net cksum /tmp/blob)
        u=$($net post $ip:8080 /upload /tmp/up 2>&1)
        p=$($net parallel 100 $ip:80 / 2>&1 | tail -1)
        # blob + upload at once, both ways
        $net get $ip:8080 /blob /tmp/blob2 >/tmp/g2 2>&1 &
        a=$!
        u2=$($net post $ip:8080 /upload /tmp/up 2>&1)
        wait $a
        gs2=$($net cksum /tmp/blob2)
        $net get $ip:80 / /tmp/st >/dev/null 2>&1; grep '^memory ' /tmp/st | sed "s/^/@@RIG log soak|round $i /"
        echo "@@RIG log soak|round $i: get=[$g] sum=[$gs] up=[$u] want=[$want_up] par=[$p] both: sum2=[$gs2] up2=[$u2]"
        if [ $((i % 3)) = 0 ]; then
            n=$(grep -c "serving again" /var/log/xen/console/guest-net.log)
            xl network-detach net 0 >/dev/null 2>&1
            usleep 3000000
            xl network-attach net mac=00:16:3e:00:00:02 bridge=br0 script=/rig/bin/vif-rig >/dev/null 2>&1
            for _ in $(seq 1 600); do [ "$(grep -c 'serving again' /var/log/xen/console/guest-net.log)" -gt "$n" ] && break; usleep 100000; done
            usleep 2000000
            echo "@@RIG log soak|reattached"
        fi
    done
    $net get $ip:80 / /tmp/st >/dev/null 2>&1; grep '^net ' /tmp/st | sed 's/^/@@RIG log soak|/'
    $net get $ip:80 /quit >/dev/null 2>&1
fi
rig_wait net 120 shutdown
