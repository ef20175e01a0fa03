/* digest.c - the upload ceiling: md5 + sha1 + sha256 of a file in one pass.
 *
 * What glared computes on every byte it stores (src/digest.c: three
 * OpenSSL EVP contexts updated in turn over each chunk), alone, over a file
 * read in 256 KiB chunks (normally from the page cache). Prints
 * "MB/s md5 sha1 sha256" (MB = 10^6 bytes). With OUT, each chunk is also
 * written to OUT and OUT is fdatasync'ed at the end: what storing a blob
 * costs one thread without any network in the way.
 *
 *   cc -O2 -o /tmp/digest bench/digest.c -lcrypto && /tmp/digest FILE [OUT]
 */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#include <openssl/evp.h>

#define CHUNK (256 * 1024)

int main(int argc, char **argv)
{
	static unsigned char buf[CHUNK];
	const char *names[3] = { "MD5", "SHA1", "SHA256" };
	EVP_MD_CTX *ctx[3];
	struct timespec t0, t1;
	long long total = 0;
	ssize_t n;
	int fd, out = -1;

	if (argc != 2 && argc != 3) {
		fprintf(stderr, "usage: digest FILE [OUT]\n");
		return 2;
	}
	if (argc == 3) {
		out = open(argv[2], O_WRONLY | O_CREAT | O_TRUNC, 0600);
		if (out < 0) {
			perror(argv[2]);
			return 1;
		}
	}
	fd = open(argv[1], O_RDONLY);
	if (fd < 0) {
		perror(argv[1]);
		return 1;
	}
	for (int i = 0; i < 3; i++) {
		EVP_MD *md = EVP_MD_fetch(NULL, names[i], NULL);
		ctx[i] = EVP_MD_CTX_new();
		if (!md || !ctx[i] || !EVP_DigestInit_ex2(ctx[i], md, NULL)) {
			fprintf(stderr, "digest: no %s\n", names[i]);
			return 1;
		}
	}
	clock_gettime(CLOCK_MONOTONIC, &t0);
	while ((n = read(fd, buf, sizeof buf)) > 0) {
		for (int i = 0; i < 3; i++)
			EVP_DigestUpdate(ctx[i], buf, (size_t)n);
		if (out >= 0 && write(out, buf, (size_t)n) != n) {
			perror("write");
			return 1;
		}
		total += n;
	}
	if (n < 0) {
		perror("read");
		return 1;
	}
	if (out >= 0 && (fdatasync(out) < 0 || close(out) < 0)) {
		perror("fdatasync");
		return 1;
	}
	clock_gettime(CLOCK_MONOTONIC, &t1);
	double s = (double)(t1.tv_sec - t0.tv_sec) +
		   (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
	printf("%.1f", (double)total / s / 1e6);
	for (int i = 0; i < 3; i++) {
		unsigned char md[EVP_MAX_MD_SIZE];
		unsigned int len = 0;
		EVP_DigestFinal_ex(ctx[i], md, &len);
		printf(" ");
		for (unsigned int j = 0; j < len; j++)
			printf("%02x", md[j]);
	}
	printf("\n");
	close(fd);
	return 0;
}
