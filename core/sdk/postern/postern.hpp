#pragma once
/// @file postern.hpp
/// Everything a plugin needs, in one include.

#include <postern/abi.hpp>
#include <postern/duration.hpp>
#include <postern/host.hpp>
#include <postern/line_endings.hpp>
#include <postern/plugin.hpp>
#include <postern/policy.hpp>
#include <postern/transport.hpp>
#include <postern/types.hpp>
