/* SPDX-License-Identifier: GPL-2.0 */
/* Internet checksum arithmetic (RFC 1071, incremental update per RFC 1624).
 *
 * The L4 checksum field comes in two forms. A packet from the wire carries the
 * full checksum. A packet a local socket sent over veth with tx offload on
 * carries CHECKSUM_PARTIAL: the field holds only the uncomplemented pseudo
 * header sum and the kernel finishes it on the way out. XDP cannot see
 * skb->ip_summed, so the form is recognised by value (see l4_csum_form()).
 */
#ifndef XDPFWD_CSUM_H
#define XDPFWD_CSUM_H

#include <stdbool.h>
#include <linux/types.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

enum csum_form {
	CSUM_NONE,	/* UDP without checksum (0): stays 0 */
	CSUM_FULL,
	CSUM_PARTIAL,
};

/* csum_add - one's complement addition of two 32-bit partial sums. */
static __always_inline __u32 csum_add(__u32 sum, __u32 addend)
{
	sum += addend;
	return sum + (sum < addend);
}

/* csum_fold16 - fold a 32-bit sum to 16 bits, not complemented. */
static __always_inline __u16 csum_fold16(__u32 sum)
{
	sum = (sum & 0xffff) + (sum >> 16);
	sum = (sum & 0xffff) + (sum >> 16);
	return (__u16)sum;
}

/* csum_diff32 - the RFC 1624 term (~old + new) for a 32-bit field. */
static __always_inline __u32 csum_diff32(__u32 sum, __u32 old, __u32 new)
{
	return csum_add(csum_add(sum, ~old), new);
}

/* csum_diff16 - the RFC 1624 term (~old + new) for a 16-bit field. */
static __always_inline __u32 csum_diff16(__u32 sum, __u16 old, __u16 new)
{
	return csum_add(csum_add(sum, (__u16)~old), new);
}

/* csum_apply - apply @diff to a checksum field in the given form.
 * Full checksums follow RFC 1624 eqn. 3, HC' = ~(~HC + ~m + m'); a partial
 * field holds an uncomplemented sum and takes the difference directly. */
static __always_inline void csum_apply(__sum16 *field, __u32 diff,
				       enum csum_form form)
{
	if (form == CSUM_PARTIAL)
		*field = csum_fold16(csum_add(*field, diff));
	else
		*field = ~csum_fold16(csum_add((__u16)~*field, diff));
}

/* pseudo_sum - the IPv4 pseudo header sum (RFC 793), as memory-order words. */
static __always_inline __u32 pseudo_sum(__be32 saddr, __be32 daddr, __u8 proto,
					__u32 l4_len)
{
	__u32 sum = csum_add(saddr, daddr);

	sum = csum_add(sum, bpf_htons(proto));
	return csum_add(sum, bpf_htons(l4_len));
}

#define CSUM_CHUNK 512		/* the most bpf_csum_diff() sums in one call */
#define CSUM_MAX_CHUNKS 16	/* 8 KiB: more than any frame XDP sees */

/* csum_tail - add the @n bytes at @base + (@len with the bits below 2*@n
 * cleared), when @len has bit @n set (@n a multiple of 4).
 * Returns false when those bytes are not in the frame. */
static __always_inline bool csum_tail(void *base, void *end, __u32 len, __u32 n,
				      __u32 *sum)
{
	void *pos = base + (len & (CSUM_CHUNK - 1) & ~(2 * n - 1));

	if (!(len & n))
		return true;
	if (pos + n > end)
		return false;
	*sum = bpf_csum_diff(NULL, 0, pos, n, *sum);
	return true;
}

/* csum_bytes - sum @len bytes at @pos (within [@pos, @end)), unfolded.
 * Returns the 32-bit sum, or 0 when the bytes are not all in the frame. */
static __always_inline __u32 csum_bytes(void *pos, void *end, __u32 len)
{
	__u16 last = 0;
	__u32 sum = 0;
	__u16 *half;
	__u8 *odd;
	int i;

	for (i = 0; i < CSUM_MAX_CHUNKS && len >= CSUM_CHUNK; i++) {
		if (pos + CSUM_CHUNK > end)
			return 0;
		sum = bpf_csum_diff(NULL, 0, pos, CSUM_CHUNK, sum);
		pos += CSUM_CHUNK;
		len -= CSUM_CHUNK;
	}
	if (len >= CSUM_CHUNK)
		return 0;
	if (!csum_tail(pos, end, len, 256, &sum) || !csum_tail(pos, end, len, 128, &sum) ||
	    !csum_tail(pos, end, len, 64, &sum) || !csum_tail(pos, end, len, 32, &sum) ||
	    !csum_tail(pos, end, len, 16, &sum) || !csum_tail(pos, end, len, 8, &sum) ||
	    !csum_tail(pos, end, len, 4, &sum))
		return 0;
	if (len & 2) {
		half = pos + (len & (CSUM_CHUNK - 1) & ~3u);
		if ((void *)(half + 1) > end)
			return 0;
		sum = csum_add(sum, *half);
	}
	if (len & 1) {
		odd = pos + (len & (CSUM_CHUNK - 1) & ~1u);
		if ((void *)(odd + 1) > end)
			return 0;
		*(__u8 *)&last = *odd;	/* odd byte, padded with a zero byte */
		sum = csum_add(sum, last);
	}
	return sum;
}

#endif /* XDPFWD_CSUM_H */
