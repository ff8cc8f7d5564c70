// trackrl_link.as: trackrl's TMInterface 2 plugin (AngelScript), the game end of the loopback TCP protocol.
//
// Wire-compatible with Linesight's Python_Link.as: the same message ids (1-23), the same byte layouts, the same
// order, so a Linesight client drives this plugin and trackrl's client drives Linesight's. Written from the
// protocol facts (GAME_BRIDGE.md sections 1-3), as a thin mirror of `trackrl tmi-serve` (src/trackrl/game/
// server.py): every message that server handles is handled here with the same id and payload, and
// tests/test_game_plugin.py parses this file to keep it so.
//
// NOT RUN HERE: this file has never been loaded by TMInterface in trackrl's tests (no game on the test machines).
// Lines that depend on a TMInterface 2.1 API whose exact name or signature is not in GAME_BRIDGE.md say
// "TMI API (unverified)"; if TMInterface's script console reports an error there, that name is the one to fix.
//
// Wire rules (little-endian, 32-bit ints and floats, no envelope):
// - a message is an int32 type followed by the payload fixed by the type; variable payloads carry an int32
//   byte count first; a sync message (types 1-5, game -> client) blocks the game until the client echoes its
//   type as a bare int32;
// - commands (types 6-23, client -> game) are read only while the game waits for such an echo, and answered
//   at once (WaitForResponse);
// - a wait ends on the echo, on C_SHUTDOWN, or when no data came within the response timeout since the wait
//   began (2000 ms until C_SET_TIMEOUT, reset on every disconnect): the client is then dropped;
// - one client at a time: a new connection replaces the old one (also during a wait, which it ends); the
//   listening socket stays.
// Stricter than Python_Link.as, as tmi-serve is: an unknown message type, an impossible length or a frame of the
// wrong size drops the client with a logged reason (the stream cannot be resynchronised), instead of being
// ignored with its payload left unread.
//
// Port: `set custom_port N` (TMInterface's launch config string, /configstring="set custom_port N"); the
// listener is opened at the first rendered frame after the variable is set (and reopened if it changes).
// Keep only one of trackrl_link.as and Python_Link.as in the Plugins folder: both would listen on that port.
//
// Handler table: message -> this plugin -> tmi-serve (server.py)
//   1  SC_RUN_STEP_SYNC                  OnRunStep: every on-step period, or TickTime > RaceTime -> PluginServer._run_physics
//   2  SC_CHECKPOINT_COUNT_CHANGED_SYNC  OnCheckpointCountChanged                 -> PluginServer._run_physics (crossed)
//   3  SC_LAP_COUNT_CHANGED_SYNC         OnLapCountChanged                        -> (tmi-serve's tracks have one lap)
//   4  SC_REQUESTED_FRAME_SYNC           Render -> SendRequestedFrame             -> PluginServer._send_frame
//   5  SC_ON_CONNECT_SYNC                Render / OnGameStateChanged -> OnConnect -> PluginServer._accept
//   6  C_SET_SPEED                       HandleMessage: SetSpeed                  -> _handle: self.speed
//   7  C_REWIND_TO_STATE                 HandleMessage: RewindToState(blob)       -> _handle: game.rewind
//   8  C_REWIND_TO_CURRENT_STATE         HandleMessage: RewindToState(SaveState)  -> _handle: pass
//   9  C_GET_SIMULATION_STATE            HandleMessage: int32 length + blob       -> _handle: game.state_blob
//   10 C_SET_INPUT_STATE                 HandleMessage: SetInputState x4          -> _handle: game.set_inputs
//   11 C_GIVE_UP                         HandleMessage: GiveUp                    -> _handle: game.give_up
//   12 C_PREVENT_SIMULATION_FINISH       HandleMessage: PreventSimulationFinish   -> _handle: game.prevent_finish
//   13 C_SHUTDOWN                        WaitForResponse: drop the client         -> _wait_for_response
//   14 C_EXECUTE_COMMAND                 HandleMessage: ExecuteCommand            -> _handle: execute_command
//   15 C_SET_TIMEOUT                     HandleMessage: responseTimeoutMs         -> _handle: response_timeout_ms
//   16 C_RACE_FINISHED                   HandleMessage: int32 0/1                 -> _handle: game.race_finished
//   17 C_REQUEST_FRAME                   HandleMessage: frameWidth, frameHeight   -> _handle: frame_request
//   18 C_RESET_CAMERA                    HandleMessage: ResetCamera               -> _handle: logged
//   19 C_SET_ON_STEP_PERIOD              HandleMessage: onStepPeriodMs            -> _handle: on_step_period_ms
//   20 C_UNREQUEST_FRAME                 HandleMessage: frameHeight = -1          -> _handle: frame_request = None
//   21 C_TOGGLE_INTERFACE                HandleMessage: ToggleRaceInterface       -> _handle: logged
//   22 C_IS_IN_MENUS                     HandleMessage: int32 0/1                 -> _handle: int32 0
//   23 C_GET_INPUTS                      HandleMessage: int32 length + text       -> _handle: game.inputs_text

const string HOST = "127.0.0.1";  // loopback only
const uint DEFAULT_RESPONSE_TIMEOUT_MS = 2000;
const int DEFAULT_ON_STEP_PERIOD_MS = 10;
const int MAX_BLOB_BYTES = 1048576;  // protocol.MAX_BLOB_BYTES: a longer length means the stream is out of step
const int MAX_COMMAND_BYTES = 65536;  // server.MAX_COMMAND_BYTES
const int MAX_FRAME_SIDE = 4096;  // server.py refuses larger C_REQUEST_FRAME sizes too

enum MessageType {
    SCRunStepSync = 1,
    SCCheckpointCountChangedSync = 2,
    SCLapCountChangedSync = 3,
    SCRequestedFrameSync = 4,
    SCOnConnectSync = 5,
    CSetSpeed = 6,
    CRewindToState = 7,
    CRewindToCurrentState = 8,
    CGetSimulationState = 9,
    CSetInputState = 10,
    CGiveUp = 11,
    CPreventSimulationFinish = 12,
    CShutdown = 13,
    CExecuteCommand = 14,
    CSetTimeout = 15,
    CRaceFinished = 16,
    CRequestFrame = 17,
    CResetCamera = 18,
    CSetOnStepPeriod = 19,
    CUnrequestFrame = 20,
    CToggleInterface = 21,
    CIsInMenus = 22,
    CGetInputs = 23
}

Net::Socket@ listenSock = null;
Net::Socket@ clientSock = null;
uint16 listenPort = 0;
bool warnedNoPort = false;
uint responseTimeoutMs = DEFAULT_RESPONSE_TIMEOUT_MS;
int onStepPeriodMs = DEFAULT_ON_STEP_PERIOD_MS;
int frameWidth = -1;
int frameHeight = -1;  // < 0: no frame requested
bool onConnectQueued = false;
uint64 waitStartMs = 0;  // the response timeout runs from the start of each wait, whatever traffic comes
Net::Socket@ waitingClient = null;  // a client that connected while the game waited for the previous one
uint64 lastAcceptPollMs = 0;
const uint ACCEPT_POLL_INTERVAL_MS = 100;

PluginInfo@ GetPluginInfo()
{
    PluginInfo@ info = PluginInfo();
    info.Author = "trackrl";
    info.Name = "trackrl link";
    info.Description = "TMInterface 2 protocol for trackrl and Linesight clients (loopback TCP, port custom_port)";
    info.Version = "1.0";
    return info;
}

void Main()
{
    RegisterVariable("custom_port", 0);
    log("trackrl link: loaded; listening once custom_port is set (set custom_port N)", Severity::Info);
}

void OnDisabled()
{
    DropClient("plugin disabled");
    @waitingClient = null;
    if (listenSock !is null) {
        listenSock.Close();  // TMI API (unverified): releasing the socket may be enough
        @listenSock = null;
    }
}

// ---- the listener and the client ------------------------------------------------------------------------------

void EnsureListening()
{
    uint16 port = uint16(GetVariableDouble("custom_port"));
    if (port == 0) {
        if (!warnedNoPort) {
            log("trackrl link: custom_port is 0; launch the game with /configstring=\"set custom_port N\"",
                Severity::Warning);
            warnedNoPort = true;
        }
        return;
    }
    if (listenSock !is null && port == listenPort) {
        return;
    }
    if (listenSock !is null) {
        DropClient("custom_port changed to " + port);
        @listenSock = null;
    }
    Net::Socket@ sock = Net::Socket();
    if (!sock.Listen(HOST, port)) {
        log("trackrl link: cannot listen on " + HOST + ":" + port + " (in use by another instance or plugin?)",
            Severity::Error);
        listenPort = port;  // do not retry every frame; a new custom_port value retries
        return;
    }
    @listenSock = sock;
    listenPort = port;
    log("trackrl link: listening on " + HOST + ":" + port, Severity::Info);
}

void AcceptClient()
{
    if (listenSock is null) {
        return;
    }
    Net::Socket@ accepted = waitingClient;
    @waitingClient = null;
    if (accepted is null) {
        @accepted = listenSock.Accept(0);  // non-blocking
    }
    if (accepted is null) {
        return;
    }
    if (clientSock !is null) {
        DropClient("a new client connected");
    }
    accepted.NoDelay = true;
    @clientSock = accepted;
    log("trackrl link: client connected from " + accepted.RemoteIP, Severity::Info);  // TMI API (unverified): RemoteIP
    if (GetCurrentGameState() == TM::GameState::StartUp) {
        onConnectQueued = true;  // on-connect waits for the menus (tmi-serve has no start-up state)
    } else {
        OnConnect();
    }
}

void DropClient(const string &in reason)
{
    if (clientSock is null) {
        return;
    }
    log("trackrl link: client disconnected: " + reason, Severity::Info);
    clientSock.Close();  // TMI API (unverified): dropping the last handle closes it too
    @clientSock = null;
    frameHeight = -1;
    onConnectQueued = false;
    responseTimeoutMs = DEFAULT_RESPONSE_TIMEOUT_MS;
}

// ---- sync messages (game -> client), each followed by a wait for its echo -------------------------------------

void OnConnect()
{
    if (clientSock is null) {
        return;
    }
    clientSock.Write(int(MessageType::SCOnConnectSync));
    WaitForResponse(MessageType::SCOnConnectSync);
}

void Render()
{
    EnsureListening();
    AcceptClient();
    if (clientSock !is null && frameHeight >= 0) {
        SendRequestedFrame();
    }
}

void SendRequestedFrame()
{
    // TMI API (unverified): CaptureScreenshot returns W*H*4 BGRA bytes, rows top first, no padding.
    array<uint8>@ pixels = Graphics::CaptureScreenshot(vec2(frameWidth, frameHeight));
    uint expected = uint(frameWidth) * uint(frameHeight) * 4;
    if (pixels is null || pixels.Length != expected) {
        DropClient("captured frame is not " + frameWidth + "x" + frameHeight + " BGRA (" + expected + " bytes)");
        return;
    }
    clientSock.Write(int(MessageType::SCRequestedFrameSync));
    clientSock.Write(pixels);
    WaitForResponse(MessageType::SCRequestedFrameSync);
    frameHeight = -1;  // one frame per request
}

void OnGameStateChanged(TM::GameState state)
{
    if (state == TM::GameState::Menus && onConnectQueued) {
        onConnectQueued = false;
        OnConnect();
    }
}

void OnRunStep(SimulationManager@ simManager)
{
    if (clientSock is null) {
        return;
    }
    int raceTime = simManager.RaceTime;
    // After the finish the race time stops while the tick time goes on: every tick is reported then.
    if (raceTime % onStepPeriodMs == 0 || simManager.TickTime > raceTime) {
        clientSock.Write(int(MessageType::SCRunStepSync));
        clientSock.Write(int(raceTime));
        WaitForResponse(MessageType::SCRunStepSync);
    }
}

void OnCheckpointCountChanged(SimulationManager@ simManager, int current, int target)
{
    if (clientSock is null) {
        return;
    }
    clientSock.Write(int(MessageType::SCCheckpointCountChangedSync));
    clientSock.Write(int(current));
    clientSock.Write(int(target));
    WaitForResponse(MessageType::SCCheckpointCountChangedSync);
}

void OnLapCountChanged(SimulationManager@ simManager, int current, int target)
{
    if (clientSock is null) {
        return;
    }
    clientSock.Write(int(MessageType::SCLapCountChangedSync));
    clientSock.Write(int(current));
    clientSock.Write(int(target));
    WaitForResponse(MessageType::SCLapCountChangedSync);
}

// ---- the wait: commands are read only here --------------------------------------------------------------------

bool TimedOut()
{
    return Time::Now - waitStartMs > responseTimeoutMs;
}

// True once `count` bytes can be read; false (client dropped) if the response timeout passes first.
bool WaitForBytes(uint count, const string &in what)
{
    while (clientSock !is null && clientSock.Available < count) {
        if (TimedOut()) {
            DropClient("timed out reading " + what + " (" + count + " bytes) after " + responseTimeoutMs + " ms");
            return false;
        }
    }
    return clientSock !is null;
}

// A new client while waiting for the old one's echo: the old one is gone (a restarted trainer). tmi-serve notices a
// closed connection at once; here the wait would otherwise last the whole timeout (days between races).
bool NewClientArrived()
{
    if (listenSock is null || Time::Now - lastAcceptPollMs < ACCEPT_POLL_INTERVAL_MS) {
        return false;
    }
    lastAcceptPollMs = Time::Now;
    @waitingClient = listenSock.Accept(0);
    return waitingClient !is null;
}

void WaitForResponse(MessageType expected)
{
    waitStartMs = Time::Now;
    while (clientSock !is null) {
        if (clientSock.Available == 0) {
            if (TimedOut()) {
                DropClient("no echo of message " + int(expected) + " within " + responseTimeoutMs + " ms (timeout)");
                return;
            }
            if (NewClientArrived()) {
                DropClient("a new client connected while waiting for message " + int(expected));
                return;  // accepted at the next Render()
            }
            continue;
        }
        int messageType = clientSock.ReadInt32();
        if (messageType == int(expected)) {
            return;
        }
        if (messageType == int(MessageType::CShutdown)) {
            DropClient("the client sent C_SHUTDOWN");
            return;
        }
        HandleMessage(messageType);
    }
}

// ---- commands (client -> game), answered at once ----------------------------------------------------------------

void HandleMessage(int messageType)
{
    SimulationManager@ simManager = GetSimulationManager();
    switch (messageType) {
        case MessageType::SCRunStepSync:
        case MessageType::SCCheckpointCountChangedSync:
        case MessageType::SCLapCountChangedSync:
        case MessageType::SCRequestedFrameSync:
        case MessageType::SCOnConnectSync: {
            break;  // the echo of another sync message: accepted silently
        }
        case MessageType::CSetSpeed: {
            if (!WaitForBytes(4, "C_SET_SPEED's payload")) return;
            float speed = clientSock.ReadFloat();
            simManager.SetSpeed(speed);  // 0 pauses the simulation
            break;
        }
        case MessageType::CRewindToState: {
            if (!WaitForBytes(4, "C_REWIND_TO_STATE's length")) return;
            int length = clientSock.ReadInt32();
            if (length < 0 || length > MAX_BLOB_BYTES) {
                DropClient("C_REWIND_TO_STATE announced " + length + " bytes (at most " + MAX_BLOB_BYTES + ")");
                return;
            }
            if (!WaitForBytes(uint(length), "C_REWIND_TO_STATE's state blob")) return;
            array<uint8>@ blob = clientSock.ReadBytes(uint(length));  // TMI API (unverified): ReadBytes
            if (simManager.InRace) {
                SimulationState state(blob);  // TMI API (unverified): the state from ToArray()'s bytes
                simManager.RewindToState(state);
            }
            break;
        }
        case MessageType::CRewindToCurrentState: {
            if (simManager.InRace) {
                simManager.RewindToState(simManager.SaveState());
            }
            break;
        }
        case MessageType::CGetSimulationState: {
            array<uint8>@ blob = simManager.SaveState().ToArray();  // answered even outside a race
            clientSock.Write(int(blob.Length));
            clientSock.Write(blob);
            break;
        }
        case MessageType::CSetInputState: {
            if (!WaitForBytes(4, "C_SET_INPUT_STATE's payload")) return;
            uint8 left = clientSock.ReadUint8();
            uint8 right = clientSock.ReadUint8();
            uint8 accelerate = clientSock.ReadUint8();
            uint8 brake = clientSock.ReadUint8();
            if (simManager.InRace) {
                simManager.SetInputState(InputType::Left, left > 0 ? 1 : 0);
                simManager.SetInputState(InputType::Right, right > 0 ? 1 : 0);
                simManager.SetInputState(InputType::Up, accelerate > 0 ? 1 : 0);
                simManager.SetInputState(InputType::Down, brake > 0 ? 1 : 0);
            }
            break;
        }
        case MessageType::CGiveUp: {
            if (simManager.InRace) {
                simManager.GiveUp();  // restart the race with the countdown
            }
            break;
        }
        case MessageType::CPreventSimulationFinish: {
            if (simManager.InRace) {
                simManager.PreventSimulationFinish();
            }
            break;
        }
        case MessageType::CExecuteCommand: {
            if (!WaitForBytes(4, "C_EXECUTE_COMMAND's length")) return;
            int length = clientSock.ReadInt32();  // bytes (UTF-8), as trackrl's client sends them
            if (length < 0 || length > MAX_COMMAND_BYTES) {
                DropClient("C_EXECUTE_COMMAND announced " + length + " bytes (at most " + MAX_COMMAND_BYTES + ")");
                return;
            }
            if (!WaitForBytes(uint(length), "C_EXECUTE_COMMAND's text")) return;
            string command = clientSock.ReadString(uint(length));
            ExecuteCommand(command);
            break;
        }
        case MessageType::CSetTimeout: {
            if (!WaitForBytes(4, "C_SET_TIMEOUT's payload")) return;
            responseTimeoutMs = clientSock.ReadUint32();
            break;
        }
        case MessageType::CRaceFinished: {
            bool finished = simManager.PlayerInfo.RaceFinished || simManager.TickTime > simManager.RaceTime;
            clientSock.Write(int(finished ? 1 : 0));
            break;
        }
        case MessageType::CRequestFrame: {
            if (!WaitForBytes(8, "C_REQUEST_FRAME's payload")) return;
            int width = clientSock.ReadInt32();
            int height = clientSock.ReadInt32();
            if (width <= 0 || width > MAX_FRAME_SIDE || height <= 0 || height > MAX_FRAME_SIDE) {
                DropClient("C_REQUEST_FRAME asked for a " + width + "x" + height + " frame");
                return;
            }
            frameWidth = width;
            frameHeight = height;  // captured at the next Render()
            break;
        }
        case MessageType::CResetCamera: {
            simManager.ResetCamera();
            break;
        }
        case MessageType::CSetOnStepPeriod: {
            if (!WaitForBytes(4, "C_SET_ON_STEP_PERIOD's payload")) return;
            int period = clientSock.ReadInt32();
            if (period <= 0) {
                DropClient("C_SET_ON_STEP_PERIOD " + period + ": the period must be positive");
                return;
            }
            onStepPeriodMs = period;
            break;
        }
        case MessageType::CUnrequestFrame: {
            frameHeight = -1;
            break;
        }
        case MessageType::CToggleInterface: {
            if (!WaitForBytes(4, "C_TOGGLE_INTERFACE's payload")) return;
            int visible = clientSock.ReadInt32();
            ToggleRaceInterface(visible > 0);  // TMInterface 2.1.4's API
            break;
        }
        case MessageType::CIsInMenus: {
            bool inMenus = GetCurrentGameState() == TM::GameState::Menus;
            clientSock.Write(int(inMenus ? 1 : 0));
            break;
        }
        case MessageType::CGetInputs: {
            string text = simManager.InputEvents.ToCommandsText();  // a TMInterface input script
            clientSock.Write(int(text.Length));  // bytes
            clientSock.Write(text);
            break;
        }
        default: {
            DropClient("got unknown message type " + messageType + "; the stream cannot be resynchronised");
            return;
        }
    }
}
