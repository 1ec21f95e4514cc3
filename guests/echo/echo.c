/* echo: read the console ring (§4.7) found through start_info's console mfn
 * and the M2P, echo each line with console_io, stop on "quit" or ctrl-D. */
#include "guest.h"

const char guest_name[] = "echo";

static volatile int kicks;
static void on_console(unsigned port, struct regs *r) { kicks++; }

void guest_main(void)
{
    map_shared_info();
    traps_init();
    uint32_t mfn = start_info->console_mfn, port = start_info->console_evtchn;
    CHECKF(mfn_to_pfn(mfn) < start_info->nr_pages, "console ring mfn maps to a domain pfn", "mfn 0x%x pfn 0x%x", mfn, mfn_to_pfn(mfn));
    volatile struct xencons_interface *con = mfn_to_virt(mfn);
    evtchn_set_handler(port, on_console);
    unmask_evtchn(port);
    printf("echo: ready (console port %u); type lines, \"quit\" or ctrl-D ends\n", port);

    char line[256];
    int n = 0, lines = 0, end = 0;
    while (!end) {
        int consumed = 0;
        while (!end && con->in_cons != con->in_prod) {
            char c = con->in[con->in_cons & (sizeof con->in - 1)];
            __atomic_thread_fence(__ATOMIC_SEQ_CST);
            con->in_cons++;
            consumed = 1;
            if (c == 0x04) { end = 1; break; }
            if (c == '\r') continue;
            if (c != '\n') { if (n < (int)sizeof line - 1) line[n++] = c; continue; }
            line[n] = 0;
            printf("%s\n", line);
            lines++;
            end = strcmp(line, "quit") == 0;
            n = 0;
        }
        if (consumed) evtchn_send(port);       /* tell the backend there is room */
        if (!end) { block(); events_disable(); }   /* block unmasks; an upcall wakes us */
    }
    if (n) { line[n] = 0; printf("%s\n", line); lines++; }
    printf("echo: %d lines, %d console events\n", lines, kicks);
}
