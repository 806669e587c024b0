// Header self-containment (C++): IPF_HEADER (ipuflow.h or ipuflow.hpp) is included first and alone, twice, with
// -Wall -Wextra -Werror -pedantic in C++17; ipuflow.hpp is also built with -fno-exceptions -DIPUFLOW_NO_EXCEPTIONS.
#include IPF_HEADER
#include IPF_HEADER

int main() {
    ipuflow_status ok = IPUFLOW_STATUS_OK;
    return (ipuflow_version() == IPUFLOW_VERSION_NUMBER && ok == IPUFLOW_STATUS_OK) ? 0 : 1;
}
