/* hello: boot, console output, start_info and xen_version basics. */
#include "guest.h"

const char guest_name[] = "hello";

void guest_main(void)
{
    struct start_info *si = start_info;
    printf("Hello from %s (%s build), start_info at %p\n", guest_name,
#ifdef CONFIG_PAE
           "PAE",
#else
           "non-PAE",
#endif
           si);
    CHECKF(strcmp(si->magic, XEN_MAGIC) == 0, "start_info magic", "magic \"%.32s\", want \"%s\"", si->magic, XEN_MAGIC);
    CHECK_EQ(si->nr_pages > 0, 1, "nr_pages > 0");
    int ver = HYPERVISOR_xen_version(XENVER_version, 0);
    CHECKF(ver == 0x00030001 || ver == 0x00040013, "xen_version is 3.1 or 4.19", "got %x", ver);
    CHECK_EQ(HYPERVISOR_xen_version(XENVER_pagesize, 0), 4096, "pagesize is 4096");
    /* Stub 0 is mov $0,%eax; int $0x82; ret and stub 23 is push %eax; mov $23,%eax; int $0x82 (§1). */
    static const uint8_t stub0[8] = { 0xB8, 0, 0, 0, 0, 0xCD, 0x82, 0xC3 };
    static const uint8_t stub23[8] = { 0x50, 0xB8, 23, 0, 0, 0, 0xCD, 0x82 };
    CHECK(memcmp(hypercall_page, stub0, 8) == 0, "hypercall page stub 0");
    CHECK(memcmp(hypercall_page + 23 * 32, stub23, 8) == 0, "hypercall page stub 23 (iret)");
    CHECK((uint32_t)si > (uint32_t)_end && (uint32_t)si < HV_VIRT_START, "start_info above the kernel image");
    CHECK(si->pt_base > (uint32_t)si && si->nr_pt_frames > 0, "page tables after start_info");
    CHECK_EQ(mfn_to_pfn(virt_to_mfn(_text)), 0x100, "M2P[p2m[0x100]] == 0x100 (kernel at pfn 0x100)");
    printf("nr_pages %u, %u page-table frames, cmdline \"%s\"\n", si->nr_pages, si->nr_pt_frames, si->cmd_line);
}
