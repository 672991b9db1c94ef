/* hello: the smallest guest: one line of output, exit status 0. */
#include "kps.h"

int main(int argc, char **argv)
{
	kps_printf("hello from %s: %d argument%s\n", argv[0], argc - 1,
	           argc == 2 ? "" : "s");
	return 0;
}
