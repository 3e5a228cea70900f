#include "qwen2vl/util/subprocess.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <map>

#include "qwen2vl/error.h"
#include "qwen2vl/util/interrupt.h"

extern char** environ;

namespace qwen2vl {
namespace {

// Closes a descriptor once; -1 means nothing to close.
class FileDescriptor {
 public:
  FileDescriptor() = default;
  ~FileDescriptor() { reset(); }
  FileDescriptor(const FileDescriptor&) = delete;
  FileDescriptor& operator=(const FileDescriptor&) = delete;

  int get() const { return fd_; }
  void reset(int fd = -1) {
    if (fd_ >= 0) {
      ::close(fd_);
    }
    fd_ = fd;
  }

 private:
  int fd_ = -1;
};

struct Pipe {
  FileDescriptor read_end;
  FileDescriptor write_end;
};

void open_pipe(Pipe& pipe) {
  int fds[2];
  if (::pipe2(fds, O_CLOEXEC) != 0) {
    throw Error(ExitCode::kInternal, std::string("creating a pipe for a child process failed: ") + std::strerror(errno));
  }
  pipe.read_end.reset(fds[0]);
  pipe.write_end.reset(fds[1]);
}

std::vector<char*> pointers_to(std::vector<std::string>& strings) {
  std::vector<char*> pointers;
  for (std::string& text : strings) {
    pointers.push_back(text.data());
  }
  pointers.push_back(nullptr);
  return pointers;
}

// RAII for the spawn attribute objects, so every exit path destroys them.
struct SpawnSetup {
  posix_spawn_file_actions_t actions;
  posix_spawnattr_t attributes;

  SpawnSetup() {
    posix_spawn_file_actions_init(&actions);
    posix_spawnattr_init(&attributes);
  }
  ~SpawnSetup() {
    posix_spawn_file_actions_destroy(&actions);
    posix_spawnattr_destroy(&attributes);
  }
};

pid_t spawn(const std::vector<std::string>& argv, const ProcessOptions& options, Pipe& out, Pipe& err) {
  SpawnSetup setup;
  posix_spawn_file_actions_addopen(&setup.actions, STDIN_FILENO, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_adddup2(&setup.actions, out.write_end.get(), STDOUT_FILENO);
  posix_spawn_file_actions_adddup2(&setup.actions, err.write_end.get(), STDERR_FILENO);

  sigset_t all_signals;
  sigfillset(&all_signals);
  sigset_t no_signals;
  sigemptyset(&no_signals);
  posix_spawnattr_setsigdefault(&setup.attributes, &all_signals);
  posix_spawnattr_setsigmask(&setup.attributes, &no_signals);
  posix_spawnattr_setflags(&setup.attributes, POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETSIGMASK);

  std::vector<std::string> arguments = argv;
  std::vector<char*> argument_pointers = pointers_to(arguments);
  std::vector<std::string> environment = child_environment(options.environment);
  std::vector<char*> environment_pointers = pointers_to(environment);

  pid_t pid = -1;
  int status = posix_spawnp(&pid, argv[0].c_str(), &setup.actions, &setup.attributes, argument_pointers.data(),
                            environment_pointers.data());
  if (status == ENOENT || status == ENOTDIR) {
    throw Error(ExitCode::kMissingDependency, "cannot run '" + argv[0] + "': executable not found" +
                                                  (argv[0].find('/') == std::string::npos ? " in PATH" : ""));
  }
  if (status == EACCES || status == ENOEXEC) {
    throw Error(ExitCode::kMissingDependency,
                "cannot run '" + argv[0] + "': " + std::strerror(status) + "; check that it is an executable program");
  }
  if (status != 0) {
    throw Error(ExitCode::kInternal, "starting '" + argv[0] + "' failed: " + std::strerror(status));
  }
  return pid;
}

// Reads both pipes until the child closes them or the deadline passes.
// Returns false on timeout.
bool drain(Pipe& out, Pipe& err, ProcessResult& result,
           std::optional<std::chrono::steady_clock::time_point> deadline) {
  struct Stream {
    FileDescriptor& fd;
    std::string& text;
  };
  Stream streams[2] = {{out.read_end, result.stdout_text}, {err.read_end, result.stderr_text}};
  char buffer[64 * 1024];

  while (out.read_end.get() >= 0 || err.read_end.get() >= 0) {
    int wait_ms = -1;
    if (deadline) {
      auto left = std::chrono::duration_cast<std::chrono::milliseconds>(*deadline - std::chrono::steady_clock::now());
      if (left.count() <= 0) {
        return false;
      }
      wait_ms = static_cast<int>(std::min<int64_t>(left.count(), 1000 * 60 * 60));
    }

    pollfd fds[2];
    nfds_t count = 0;
    Stream* polled[2];
    for (Stream& stream : streams) {
      if (stream.fd.get() >= 0) {
        fds[count] = pollfd{stream.fd.get(), POLLIN, 0};
        polled[count] = &stream;
        ++count;
      }
    }
    int ready = ::poll(fds, count, wait_ms);
    if (ready < 0) {
      if (errno == EINTR) {
        continue;
      }
      throw Error(ExitCode::kInternal, std::string("waiting for a child process's output failed: ") + std::strerror(errno));
    }
    for (nfds_t i = 0; i < count; ++i) {
      if (fds[i].revents == 0) {
        continue;
      }
      ssize_t got = ::read(fds[i].fd, buffer, sizeof(buffer));
      if (got > 0) {
        polled[i]->text.append(buffer, static_cast<size_t>(got));
      } else if (got == 0 || errno != EINTR) {
        polled[i]->fd.reset();  // end of file, or a read error: stop reading this stream
      }
    }
  }
  return true;
}

// Reaps `pid` into `status` if it exits before `deadline`; returns false otherwise.
bool wait_until(pid_t pid, std::chrono::steady_clock::time_point deadline, int& status) {
  while (true) {
    pid_t reaped = ::waitpid(pid, &status, WNOHANG);
    if (reaped == pid) {
      return true;
    }
    if (reaped < 0 && errno != EINTR) {
      throw Error(ExitCode::kInternal, std::string("waiting for a child process failed: ") + std::strerror(errno));
    }
    if (std::chrono::steady_clock::now() >= deadline) {
      return false;
    }
    ::usleep(10 * 1000);
  }
}

}  // namespace

std::vector<std::string> child_environment(const std::vector<std::pair<std::string, std::string>>& overrides) {
  std::map<std::string, std::string> replaced(overrides.begin(), overrides.end());
  std::vector<std::string> result;
  for (char** entry = environ; entry != nullptr && *entry != nullptr; ++entry) {
    std::string text(*entry);
    std::string name = text.substr(0, text.find('='));
    if (replaced.count(name) == 0) {
      result.push_back(std::move(text));
    }
  }
  for (const auto& [name, value] : replaced) {
    result.push_back(name + "=" + value);
  }
  return result;
}

ProcessResult run_process(const std::vector<std::string>& argv, const ProcessOptions& options) {
  if (argv.empty() || argv[0].empty()) {
    throw Error(ExitCode::kUsage, "run_process needs a program to run; the argument vector is empty");
  }

  Pipe out;
  Pipe err;
  open_pipe(out);
  open_pipe(err);
  // Spawn and register under the interrupt lock, so that an interrupt cannot
  // fall between the two and leave the child running.
  pid_t pid = -1;
  std::optional<ScopedChildProcess> stop_on_interrupt;
  {
    const InterruptCriticalSection no_interrupt;
    pid = spawn(argv, options, out, err);
    stop_on_interrupt.emplace(pid);
  }
  // NOTE: the registration ends after the child is reaped, so in theory an
  // interrupt in between could signal a new process that reused the pid.
  out.write_end.reset();  // only the child writes; EOF arrives when it exits
  err.write_end.reset();

  std::optional<std::chrono::steady_clock::time_point> deadline;
  if (options.timeout) {
    deadline = std::chrono::steady_clock::now() + *options.timeout;
  }

  ProcessResult result;
  bool finished = true;
  try {
    finished = drain(out, err, result, deadline);
  } catch (...) {
    ::kill(pid, SIGKILL);
    ::waitpid(pid, nullptr, 0);
    throw;
  }
  // A child can close its output and keep running, so the deadline also
  // applies to waiting for it to exit.
  int status = 0;
  if (finished && deadline && !wait_until(pid, *deadline, status)) {
    finished = false;
  }
  if (!finished) {
    ::kill(pid, SIGKILL);
    result.timed_out = true;
  }
  if (!finished || !deadline) {
    while (::waitpid(pid, &status, 0) < 0) {
      if (errno != EINTR) {
        throw Error(ExitCode::kInternal, "waiting for '" + argv[0] + "' failed: " + std::strerror(errno));
      }
    }
  }
  if (WIFEXITED(status)) {
    result.exit_code = WEXITSTATUS(status);
  } else if (WIFSIGNALED(status)) {
    result.signal = WTERMSIG(status);
  }
  return result;
}

}  // namespace qwen2vl
