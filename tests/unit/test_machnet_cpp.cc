// SPDX-License-Identifier: MIT
//
// machnet.h from C++: every function and type must compile and link, as a
// Machnet application written in C++ uses them. Build-only check: run
// without arguments it does nothing; with an argument it tries the calls
// against whatever tenant the environment names, and reports.
#include <machnet.h>

#include <cstdio>
#include <cstring>

namespace {

int exercise()
{
	if (machnet_init() != 0)
		return 1;
	void *ch = machnet_attach();
	if (ch == nullptr)
		return 1;

	MachnetFlow_t flow{};
	const char msg[] = "hello from C++";
	char buf[64];
	MachnetIovec_t iov{buf, sizeof(buf)};
	MachnetMsgHdr_t hdr{};
	hdr.msg_size = sizeof(msg);
	hdr.flow_info = flow;
	hdr.msg_iov = &iov;
	hdr.msg_iovlen = 1;
	struct MachnetFlowStats stats;
	struct MachnetChannelCounters counters;
	int reason = 0;

	(void)machnet_listen(ch, "10.0.0.1", 888);
	(void)machnet_connect(ch, "10.0.0.1", "10.0.0.2", 888, &flow);
	(void)machnet_send(ch, flow, msg, sizeof(msg));
	(void)machnet_sendmsg(ch, &hdr);
	(void)machnet_sendmmsg(ch, &hdr, 1);
	ssize_t n = machnet_recv(ch, buf, sizeof(buf), &flow);
	(void)machnet_recvmsg(ch, &hdr);
	n += machnet_recv_timeout(ch, buf, sizeof(buf), &flow, 10);
	(void)machnet_recvmsg_timeout(ch, &hdr, 10);
	int fd = machnet_channel_fd(ch);
	(void)machnet_flow_error(ch, &flow, &reason);
	(void)machnet_flow_stats(ch, flow, &stats);
	(void)machnet_channel_counters(ch, &counters);
	(void)machnet_close(ch, flow);
	std::printf("fd %d, received %zd, cached %u\n", fd, n, counters.bufs_cached);
	return machnet_detach(ch);
}

} // namespace

int main(int argc, char **argv)
{
	(void)argv;
	static_assert(sizeof(MachnetFlow_t) == 12, "MachnetFlow_t as Machnet's");
	static_assert(MACHNET_MSG_MAX_LEN == 8u * 1024u * 1024u, "Machnet's limit");
	return argc > 1 ? exercise() : 0;
}
