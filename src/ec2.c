/* ec2.c: placeholder until its issue lands; every function reports "not implemented". */
#include "kb/ec2.h"

void ec2_eni_list_free(struct ec2_eni_list *list)
{
	(void)list;
}

void ec2_volume_list_free(struct ec2_volume_list *list)
{
	(void)list;
}
