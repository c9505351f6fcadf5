/* claim.h: a broker id held by one instance, behind a small interface so a second backend
 * (the ENI attachment as the claim) fits beside the ZooKeeper one. (Filled by the claim work.) */
#ifndef KB_CLAIM_H
#define KB_CLAIM_H

struct claim;

void claim_free(struct claim *claim);

#endif
