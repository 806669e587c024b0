/* Header self-containment (C): IPF_HEADER is included first and alone, twice (the include guard must hold), with
 * -Wall -Wextra -Werror -pedantic in the C standard the build selects (C99 and C11 are both built). */
#include IPF_HEADER
#include IPF_HEADER

int main(void)
{
    /* Use a macro, a type and a function so the header's declarations are really compiled. */
    ipuflow_status ok = IPUFLOW_STATUS_OK;
    return (ipuflow_version() == IPUFLOW_VERSION_NUMBER && ok == 0) ? 0 : 1;
}
