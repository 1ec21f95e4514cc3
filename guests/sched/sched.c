/* sched: two ring-3 tasks, each with its own page tables and kernel stack,
 * preempted by VIRQ_TIMER and switched with one multicall (stack_switch +
 * NEW_BASEPTR). Tasks print through int $0x80. */
#include "guest.h"

const char guest_name[] = "sched";

#define NLINES 3
enum { SYS_EXIT, SYS_PRINT, SYS_PREEMPTIONS, SYS_CHECK };
#define USER_DATA  USER_BASE              /* private page: holds the task's letter */
#define USER_STACK (USER_BASE + 0x2000)   /* top of the private stack page */

/* ---- ring 3 (runs at its link address in pages with the U bit; no kernel data) ---- */
#define USER __attribute__((section(".user.text"), noinline))
static USER long sys(long nr, long a)
{
    long r;
    asm volatile("int $0x80" : "=a"(r) : "a"(nr), "b"(a) : "memory");
    return r;
}
static USER __attribute__((noreturn, used)) void task_main(long letter)
{
    volatile long *mine = (long *)USER_DATA;
    *mine = letter;
    for (long i = 1; i <= NLINES; i++) {
        sys(SYS_PRINT, i);
        long p = sys(SYS_PREEMPTIONS, 0);
        /* Spin in ring 3 between checks, so the timer preempts user code mid-loop. */
        while (sys(SYS_PREEMPTIONS, 0) == p)
            for (volatile long k = 0; k < 100000; k++)
                ;
        sys(SYS_CHECK, *mine);
    }
    sys(SYS_EXIT, 0);
    for (;;)
        ;
}

/* ---- ring 1 ---- */
struct task {
    char letter;
    struct aspace as;
    uint8_t *kstack;
    struct regs *frame;      /* saved user frame while not running */
    int lines, done, bad;
};
static struct task tasks[2];
static int cur, preemptions, switches, tick, timer_port;

static uint32_t kstack_top(struct task *t) { return (uint32_t)t->kstack + 2 * PAGE_SIZE; }

static void switch_to(int next)
{
    struct task *t = &tasks[next];
    struct mmuext_op op = { MMUEXT_NEW_BASEPTR, virt_to_mfn(t->as.root), 0 };
    struct multicall_entry mc[2] = {
        { HC_stack_switch, -1, { FLAT_KERNEL_DS, kstack_top(t) } },
        { HC_mmuext_op, -1, { (uint32_t)&op, 1, 0, DOMID_SELF } },
    };
    long rc = HYPERVISOR_multicall(mc, 2);
    if (rc || mc[0].result || mc[1].result)
        CHECKF(0, "context switch multicall", "rc %ld results %d %d", rc, mc[0].result, mc[1].result);
    cur_root = t->as.root;
    cur = next;
    switches++;
}

static void on_timer(unsigned port, struct regs *r)
{
    tick = 1;
    HYPERVISOR_set_timer_op(system_time() + 10000000);   /* in case there is no periodic timer */
}

static void finish(void)
{
    for (int i = 0; i < 2; i++) {
        char name[64];
        snprintf(name, sizeof name, "task %c printed %d lines", tasks[i].letter, NLINES);
        CHECK_EQ(tasks[i].lines, NLINES, name);
        snprintf(name, sizeof name, "task %c private page intact across switches", tasks[i].letter);
        CHECK_EQ(tasks[i].bad, 0, name);
    }
    CHECKF(switches >= 2 * NLINES, "tasks were preempted and switched", "switches %d", switches);
    all_pass();
}

static struct regs *upcall(struct regs *r)
{
    evtchn_scan(r);
    if (!tick || (r->cs & 3) != 3) return r;
    tick = 0;
    preemptions++;
    int other = !cur;
    if (tasks[other].done) return r;
    tasks[cur].frame = r;
    switch_to(other);
    return tasks[cur].frame;
}

static struct regs *syscall(struct regs *r)
{
    struct task *t = &tasks[cur];
    switch (r->eax) {
    case SYS_PRINT: printf("task %c %u\n", t->letter, r->ebx); t->lines++; break;
    case SYS_PREEMPTIONS: r->eax = preemptions; break;
    case SYS_CHECK: t->bad += r->ebx != (uint32_t)t->letter; break;
    case SYS_EXIT:
        t->done = 1;
        if (tasks[!cur].done) finish();
        switch_to(!cur);
        return tasks[cur].frame;
    default: CHECKF(0, "known syscall", "eax %u", r->eax);
    }
    return r;
}

static void task_init(struct task *t, char letter)
{
    t->letter = letter;
    t->kstack = alloc_page();
    alloc_page();                               /* second kernel stack page */
    uint32_t *data = alloc_page(), *stack = alloc_page();
    aspace_clone(&t->as);
    aspace_map(&t->as, USER_DATA, virt_to_mfn(data), _PAGE_PRESENT | _PAGE_RW | _PAGE_USER | _PAGE_ACCESSED | _PAGE_DIRTY);
    aspace_map(&t->as, USER_STACK - PAGE_SIZE, virt_to_mfn(stack), _PAGE_PRESENT | _PAGE_RW | _PAGE_USER | _PAGE_ACCESSED | _PAGE_DIRTY);
    char name[48];
    snprintf(name, sizeof name, "task %c page tables built and pinned", letter);
    CHECK_EQ(aspace_seal(&t->as), 0, name);
    /* Initial frame: task_main(letter) entered from a fake return address. */
    stack[1023] = letter;
    stack[1022] = 0;
    struct regs *f = (struct regs *)(kstack_top(t) - sizeof(struct regs));
    memset(f, 0, sizeof *f);
    f->es = f->ds = FLAT_USER_DS;
    f->eip = (uint32_t)task_main;
    f->cs = FLAT_USER_CS;
    f->eflags = 0x202;                          /* IF=1: HYPERVISOR_iret unmasks events */
    f->esp = USER_STACK - 8;
    f->ss = FLAT_USER_DS;
    f->vector = IRET_HYPERCALL;
    t->frame = f;
}

void guest_main(void)
{
    map_shared_info();
    traps_init();
    map_user_text();
    set_trap(0x80, 3 | 4, syscall);
    set_handler(VEC_UPCALL, upcall);
    timer_port = bind_virq(VIRQ_TIMER, 0);
    CHECKF(timer_port > 0, "bind_virq VIRQ_TIMER", "rc %d", timer_port);
    evtchn_set_handler(timer_port, on_timer);
    HYPERVISOR_set_timer_op(system_time() + 10000000);
    task_init(&tasks[0], 'A');
    task_init(&tasks[1], 'B');
    switch_to(0);
    switches = 0;
    resume_frame(tasks[0].frame);
}
