/* The smallest useful VMM, as the baseline for the exit-cost benchmark: one vCPU in its reset
 * state, the 64 KiB image given on the command line mapped read-only below 4 GiB and at 0xf0000,
 * 1 MiB of RAM for the stack; port and MMIO reads answer 0xff, COM1 writes go to stdout,
 * a write to port 0xf4 ends the run.  usage: minivmm IMAGE */
#include <fcntl.h>
#include <linux/kvm.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>

static void die(const char *what) { perror(what); exit(1); }

int main(int argc, char **argv) {
    if (argc != 2) { fprintf(stderr, "usage: minivmm IMAGE\n"); return 2; }
    int img = open(argv[1], O_RDONLY);
    if (img < 0) die(argv[1]);
    void *rom = mmap(0, 0x10000, PROT_READ, MAP_PRIVATE, img, 0);
    void *ram = mmap(0, 0x100000, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (rom == MAP_FAILED || ram == MAP_FAILED) die("mmap");
    memcpy((char *)ram + 0xf0000, rom, 0x10000);
    int kvm = open("/dev/kvm", O_RDWR);
    if (kvm < 0) die("/dev/kvm");
    int vm = ioctl(kvm, KVM_CREATE_VM, 0);
    if (vm < 0) die("KVM_CREATE_VM");
    struct kvm_userspace_memory_region low = { .slot = 0, .guest_phys_addr = 0, .memory_size = 0xa0000, .userspace_addr = (unsigned long)ram };
    struct kvm_userspace_memory_region bios = { .slot = 1, .guest_phys_addr = 0xf0000, .memory_size = 0x10000, .userspace_addr = (unsigned long)ram + 0xf0000 };
    struct kvm_userspace_memory_region top = { .slot = 2, .flags = KVM_MEM_READONLY, .guest_phys_addr = 0xffff0000, .memory_size = 0x10000, .userspace_addr = (unsigned long)rom };
    if (ioctl(vm, KVM_SET_USER_MEMORY_REGION, &low) || ioctl(vm, KVM_SET_USER_MEMORY_REGION, &bios) || ioctl(vm, KVM_SET_USER_MEMORY_REGION, &top))
        die("KVM_SET_USER_MEMORY_REGION");
    int vcpu = ioctl(vm, KVM_CREATE_VCPU, 0);
    if (vcpu < 0) die("KVM_CREATE_VCPU");
    int sz = ioctl(kvm, KVM_GET_VCPU_MMAP_SIZE, 0);
    struct kvm_run *run = mmap(0, sz, PROT_READ | PROT_WRITE, MAP_SHARED, vcpu, 0);
    if (run == MAP_FAILED) die("mmap kvm_run");
    for (;;) {
        if (ioctl(vcpu, KVM_RUN, 0) < 0) die("KVM_RUN");
        switch (run->exit_reason) {
        case KVM_EXIT_IO: {
            unsigned char *d = (unsigned char *)run + run->io.data_offset;
            if (run->io.direction == KVM_EXIT_IO_IN) { memset(d, 0xff, run->io.size * run->io.count); break; }
            if (run->io.port == 0x3f8) { fwrite(d, 1, run->io.size * run->io.count, stdout); fflush(stdout); }
            if (run->io.port == 0xf4) return 0;
            break;
        }
        case KVM_EXIT_MMIO:
            if (!run->mmio.is_write) memset(run->mmio.data, 0xff, run->mmio.len);
            break;
        case KVM_EXIT_HLT: return 0;
        default: fprintf(stderr, "minivmm: exit reason %d\n", run->exit_reason); return 1;
        }
    }
}
