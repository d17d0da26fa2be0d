#include "cli/cli.hpp"

#include <sysexits.h>

#include <exception>
#include <iostream>

int main(int argc, char** argv) {
  try {
    return postern::cli::run(argc, argv);
  } catch (const std::exception& e) {
    std::cerr << "postern: " << e.what() << '\n';
    return EX_SOFTWARE;
  }
}
