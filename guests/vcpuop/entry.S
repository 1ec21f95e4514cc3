/* The secondary-vCPU entry shared by the SMP guests (lib/secondary_entry.inc). */
#include "secondary_entry.inc"
