// A shared library with no postern entry points (any other .so someone dropped in the folder).
extern "C" int foreign_function(int x) { return x + 1; }
