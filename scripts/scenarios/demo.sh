# The main job: boot the guest once and show what it prints: with the
# programs' boot archive, the first process is the demo program, in user
# mode.
rig_start demo /rig/cfg/guest.cfg 'kernel="/rig/guests/guest"' 'ramdisk="/rig/guests/user.cpio"' &&
    rig_wait demo 120 shutdown
# And RPCs through the shadowdaemon in dom0 (files, random bytes, a tree of
# RPCs), started as a user would start it.
rig_daemon_start
# With the daemon up, it records its event timeline too (ethos.trace=on): the
# daemon keeps it as trace.json in the guest's folder; its lines go to the
# runner as "rpcdemo-trace" (scripts/demo draws it as an SVG).
rig_start rpcdemo /rig/cfg/guest.cfg 'kernel="/rig/guests/guest"' 'ramdisk="/rig/guests/user.cpio"' 'extra="ethos.init=rpc-demo ethos.trace=on"' &&
    rig_wait rpcdemo 200 shutdown
[ -f /tmp/shadow/rpcdemo/trace.json ] && sed 's/^/@@RIG log rpcdemo-trace|/' /tmp/shadow/rpcdemo/trace.json
rig_daemon_stop
rig_daemon_report
# And the network: the guest-net image on dom0's bridge, serving HTTP and UDP
# echo from one event-driven process; dom0 is the client.
if rig_start netdemo /rig/cfg/guest.cfg 'kernel="/rig/guests/guest-net"' 'ramdisk="/rig/guests/user.cpio"' \
        'vif=["mac=00:16:3e:00:00:02,bridge=br0,script=/rig/bin/vif-rig"]' \
        'extra="ethos.init=net-demo ethos.ip=192.0.2.2/24 ethos.gw=192.0.2.1"' &&
        rig_wait_line netdemo "net-demo: serving" 120; then
    {
        echo "\$ ping -c 2 192.0.2.2"
        ping -c 2 -W 5 192.0.2.2 2>&1
        echo "\$ wget -q -O - http://192.0.2.2/      # HTTP GET of the event statistics"
        wget -q -O - http://192.0.2.2/ 2>&1
        echo "\$ rig-net udp 192.0.2.2:7 hello-ethos      # UDP echo"
        /rig/bin/rig-net udp 192.0.2.2:7 hello-ethos 2>&1
        echo "\$ rig-net parallel 50 192.0.2.2:80 /      # 50 clients at once"
        /rig/bin/rig-net parallel 50 192.0.2.2:80 / 2>&1
        /rig/bin/rig-net get 192.0.2.2:80 /quit >/dev/null 2>&1
    } | sed 's/^/@@RIG log netclient|/'
fi
rig_wait netdemo 120 shutdown
