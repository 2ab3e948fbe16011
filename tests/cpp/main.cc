// The one doctest implementation unit. Test files mirror cpp/src.
#define DOCTEST_CONFIG_IMPLEMENT_WITH_MAIN
#include <doctest/doctest.h>
